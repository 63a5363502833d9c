"""``POST audit``: the audit report of a registered version written into the project, each
bad body's message, and no report for a request without credentials."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jupyter_server.utils import url_path_join
from tornado.httpclient import AsyncHTTPClient

from jupyter_mlops.config import Settings

from .conftest import Api


async def test_an_audit_is_written_into_the_project(api: Api, lin: Settings) -> None:
    response, data = await api("POST", "audit", body={"model": "lin@champion"})
    assert response.code == 200, data
    assert set(data) == {"html", "markdown", "model", "version"}
    assert (data["model"], data["version"]) == ("lin", "1")
    html, md = (lin.project_dir / data["html"], lin.project_dir / data["markdown"])
    assert data["html"].startswith("audits/lin-v1-") and data["html"].endswith(".html")
    assert md == html.with_suffix(".md")
    assert "lin" in html.read_text(encoding="utf-8")
    assert "test_accuracy" in md.read_text(encoding="utf-8")

    response, data = await api("POST", "audit", body={"model": "lin/2", "request": None})
    assert response.code == 200, data
    assert (data["model"], data["version"]) == ("lin", "2")
    assert Path(data["html"]).name.startswith("lin-v2-")
    assert (lin.project_dir / data["markdown"]).is_file()


@pytest.mark.parametrize(
    ("body", "status", "kind", "message"),
    [
        (None, 400, "BadRequest", "missing field 'model'"),
        (b"[1, 2]", 400, "BadRequest", "the request body must be a JSON object"),
        (b"{model", 400, "BadRequest",
         "the request body is not valid JSON: Expecting property name"),
        ({"model": 3}, 400, "BadRequest", "field 'model' must be str, got int"),
        ({"model": True}, 400, "BadRequest", "field 'model' has the wrong type (bool)"),
        ({"model": "lin"}, 400, "UsageError", "audit lin: write MODEL@ALIAS or MODEL/VERSION"),
        ({"model": "lin/../x"}, 400, "DeploymentError",
         "model spec 'lin/../x': write it as name@alias or name/version"),
        ({"model": "lin@champion", "request": 7}, 400, "BadRequest",
         "field 'request' must be str, got int"),
        ({"model": "lin@champion", "request": " "}, 400, "BadRequest",
         "field 'request' is empty: give the x-request-id a server answered"),
        ({"model": "nope@champion"}, 404, "NotFoundError",
         "no registered model 'nope' (models: lin)"),
        ({"model": "lin/9"}, 404, "NotFoundError",
         "model 'lin' has no version 9 (versions: 1, 2)"),
        ({"model": "lin@staging"}, 404, "NotFoundError",
         "model 'lin' has no alias 'staging' (aliases: champion (v1))"),
        ({"model": "lin@champion", "request": "no-such-request"}, 404, "NotFoundError",
         "no captured request with id 'no-such-request' (searched: "),
    ],
)  # fmt: skip
async def test_a_bad_body_is_named(
    api: Api, lin: Settings, body: Any, status: int, kind: str, message: str
) -> None:
    before = set((lin.project_dir / "audits").glob("*"))
    response, data = await api("POST", "audit", body=body)
    assert response.code == status, data
    assert data["error"] == kind, data
    assert data["message"].startswith(message), data
    assert set((lin.project_dir / "audits").glob("*")) == before


async def test_an_audit_without_credentials_is_refused(
    jp_fetch: Any, jp_http_port: int, jp_base_url: str, lin: Settings
) -> None:
    url = f"http://127.0.0.1:{jp_http_port}" + url_path_join(
        jp_base_url, "jupyter-mlops/api", "audit"
    )
    before = set((lin.project_dir / "audits").glob("*"))
    for token in (None, "wrong"):
        headers = {"Cookie": "_xsrf=abc", "X-XSRFToken": "abc"}
        if token:
            headers["Authorization"] = f"token {token}"
        response = await AsyncHTTPClient().fetch(
            url,
            method="POST",
            body=json.dumps({"model": "lin@champion"}),
            headers=headers,
            raise_error=False,
        )
        assert response.code == 403, response.body
        error = json.loads(response.body)
        assert error == {
            "error": "Forbidden",
            "message": "not authenticated: send the server's token or log in to Jupyter",
        }
    assert set((lin.project_dir / "audits").glob("*")) == before
