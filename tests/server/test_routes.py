"""Every other route: auth, models, deployments, monitoring, pipelines, errors."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from jupyter_server.utils import url_path_join
from tornado.httpclient import AsyncHTTPClient

import jupyter_mlops
from jupyter_mlops.config import Settings
from jupyter_mlops.server.routes import ROUTES
from tests.conftest import captured_rows, wait_until_async
from tests.pipelines.helpers import pipeline_file, step_notebook

from .conftest import SERVER_CONFIG, Api

_VERBS = ("get", "post", "put", "delete")
DOCS = Path(__file__).parents[2] / "docs" / "rest-api.md"


def _every_route() -> list[tuple[str, str]]:
    out = []
    for pattern, handler in ROUTES:
        path = pattern.replace("(?P<run_id>[^/]+)", "r1")
        for name in ("name", "deployment_id"):
            path = path.replace(f"(?P<{name}>[^/]+)", "x")
        out += [(verb.upper(), path) for verb in _VERBS if verb in vars(handler)]
    return out


def test_the_installed_config_enables_the_extension() -> None:
    config = json.loads(SERVER_CONFIG.read_text())
    assert config == {"ServerApp": {"jpserver_extensions": {"jupyter_mlops": True}}}
    [point] = jupyter_mlops._jupyter_server_extension_points()
    assert point == {"module": "jupyter_mlops.server"}


async def test_every_route_refuses_a_request_without_credentials(
    jp_fetch: Any, jp_http_port: int, jp_base_url: str, served: Settings
) -> None:
    routes = _every_route()
    documented = re.findall(r"^\| (?:GET|POST|PUT|DELETE) \| `", DOCS.read_text(), re.M)
    assert len(routes) == len(documented)  # every verb in docs/rest-api.md
    client = AsyncHTTPClient()
    for method, path in routes:
        url = f"http://127.0.0.1:{jp_http_port}" + url_path_join(
            jp_base_url, "jupyter-mlops/api", path
        )
        response = await client.fetch(
            url,
            method=method,
            body=b"{}" if method in ("POST", "PUT") else None,
            raise_error=False,
        )
        assert response.code == 403, (method, path, response.code)
        error = json.loads(response.body)
        assert error["error"] == "Forbidden", (method, path)
        if method == "GET":
            assert "not authenticated" in error["message"]
        else:
            # a write is refused for its missing XSRF token first; with a matching one,
            # for the missing credentials
            assert "'_xsrf' argument missing" in error["message"]
            response = await client.fetch(
                url,
                method=method,
                body=b"{}" if method in ("POST", "PUT") else None,
                headers={"Cookie": "_xsrf=abc", "X-XSRFToken": "abc"},
                raise_error=False,
            )
            assert response.code == 403, (method, path, response.code)
            assert "not authenticated" in json.loads(response.body)["message"]
        # a wrong token is no better
        response = await client.fetch(
            url,
            method=method,
            body=b"{}" if method in ("POST", "PUT") else None,
            headers={"Authorization": "token wrong"},
            raise_error=False,
        )
        assert response.code == 403, (method, path, response.code)


async def test_status_unknown_routes_and_verbs(api: Api, served: Settings) -> None:
    response, status = await api("GET", "status")
    assert response.code == 200
    assert status["project_dir"] == str(served.project_dir)
    assert status["tracking_uri"] == served.tracking_uri and status["embedded"] is True
    response, error = await api("GET", "nothing/here")
    assert response.code == 404 and "no route" in error["message"]
    response, error = await api("GET", "models/lin/promote")
    assert response.code == 405 and error["error"] == "Method Not Allowed"


async def test_models_promote_refusal_and_rollback(api: Api, lin: Settings) -> None:
    response, body = await api("GET", "models")
    assert response.code == 200
    [model] = body["models"]
    assert model["name"] == "lin" and model["aliases"] == {"champion": "1"}
    assert [v["version"] for v in model["versions"]] == ["1", "2"]

    # v2's test_accuracy 0.80 fails the production gate: 409 with the gate's evidence
    response, refused = await api(
        "POST", "models/lin/promote", body={"version": 2, "alias": "production"}
    )
    assert response.code == 409, refused
    assert refused["error"] == "PromotionRefused"
    assert "promotion of lin v2 to 'production' refused" in refused["message"]
    [gate] = refused["failed"]
    assert gate["passed"] is False and "test_accuracy" in gate["gate"]
    assert "0.8" in gate["evidence"]

    response, done = await api(
        "POST", "models/lin/promote", body={"version": "1", "alias": "production", "reason": "ok"}
    )
    assert response.code == 200, done
    assert (done["version"], done["alias"], done["verdict"]) == ("1", "production", "passed")
    assert done["gates"][0]["passed"] is True

    response, moved = await api("POST", "models/lin/promote", body={"version": 2})
    assert response.code == 200 and moved["previous"] == "1" and moved["verdict"] == "no gates"
    response, back = await api("POST", "models/lin/rollback", body={"reason": "regressed"})
    assert response.code == 200, back
    assert (back["from_version"], back["to_version"], back["kind"]) == ("2", "1", "rollback")
    _, body = await api("GET", "models")
    assert body["models"][0]["aliases"] == {"champion": "1", "production": "1"}
    assert [m["kind"] for m in body["models"][0]["history"]][-1] == "rollback"


async def test_a_refused_promotion_is_forced_with_a_reason(api: Api, lin: Settings) -> None:
    _, body = await api("GET", "models")
    [model] = body["models"]
    assert [v["metrics"] for v in model["versions"]] == [
        {"test_accuracy": 0.95},
        {"test_accuracy": 0.8},
    ]
    assert model["rollback_to"]["champion"] is None
    refused_body = {"version": 2, "alias": "production", "force": True}
    response, error = await api("POST", "models/lin/promote", body=refused_body)
    assert response.code == 400 and "a forced promotion needs a reason" in error["message"]
    response, error = await api(
        "POST", "models/lin/promote", body={**refused_body, "reason": "   "}
    )
    assert response.code == 400, error
    response, done = await api(
        "POST", "models/lin/promote", body={**refused_body, "reason": "hotfix, data bug"}
    )
    assert response.code == 200, done
    assert (done["version"], done["verdict"]) == ("2", "forced")
    assert [g["passed"] for g in done["gates"]] == [False]
    _, body = await api("GET", "models")
    last = body["models"][0]["history"][-1]
    assert (last["alias"], last["to_version"], last["gates"], last["reason"]) == (
        "production",
        "2",
        "forced",
        "hotfix, data bug",
    )
    assert body["models"][0]["rollback_to"]["production"] == "1"
    response, back = await api("POST", "models/lin/rollback", body={"alias": "production"})
    assert response.code == 200 and (back["from_version"], back["to_version"]) == ("2", "1")

    # promoting the holder again moves nothing, so a rollback is refused, not "v1 to v1"
    response, again = await api("POST", "models/lin/promote", body={"version": 1})
    assert response.code == 200 and again["previous"] == "1"
    response, error = await api("POST", "models/lin/rollback", body={"alias": "champion"})
    assert response.code == 400
    assert "nothing to roll back to: lin@champion had no holder before v1" in error["message"]


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("models/nope/promote", {"version": 1}, 404, "no registered model 'nope' (models: lin)"),
        ("models/lin/promote", {"version": 7}, 404, "model 'lin' has no version 7"),
        ("models/lin/promote", {}, 400, "missing field 'version'"),
        ("models/lin/promote", {"version": [1]}, 400, "field 'version' must be str or int"),
        ("models/lin/promote", {"version": 1, "alias": "latest"}, 400, "alias 'latest'"),
        ("models/lin/promote", {"version": 1, "force": "yes"}, 400, "'force' must be bool"),
        ("models/lin/promote", "{not json", 400, "the request body is not valid JSON"),
        ("models/lin/promote", "[1, 2]", 400, "the request body must be a JSON object"),
        ("models/lin/rollback", {"alias": "production"}, 400, "nothing to roll back to"),
        ("models/lin/rollback", {"alias": "staging"}, 404, "model 'lin' has no alias 'staging'"),
        ("models/nope/rollback", {}, 404, "no registered model 'nope'"),
    ],
)
async def test_bad_registry_requests(
    api: Api, lin: Settings, path: str, body: Any, status: int, message: str
) -> None:
    response, error = await api("POST", path, body=body)
    assert response.code == status, error
    assert message in error["message"]


def _send(url: str, rows: np.ndarray) -> None:
    for i in range(0, len(rows), 50):
        request = urllib.request.Request(
            f"{url}/invocations",
            data=json.dumps({"inputs": rows[i : i + 50].tolist()}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200


@pytest.mark.slow
async def test_deploy_traffic_monitor_alerts_and_stop(api: Api, lin: Settings) -> None:
    response, body = await api("GET", "deployments")
    assert response.code == 200 and body == {"deployments": []}
    response, deployed = await api(
        "POST", "deployments", body={"model": "lin@champion", "name": "prod"}
    )
    assert response.code == 201, deployed
    assert deployed["status"] == "running" and deployed["weights"] == {"1": 1.0}
    assert "token" not in deployed
    _, body = await api("GET", "deployments")
    assert [(d["id"], d["status"]) for d in body["deployments"]] == [("prod", "running")]

    response, moved = await api(
        "PUT", "deployments/prod/traffic", body={"weights": {"1": 90, "2": 10}}
    )
    assert response.code == 200, moved
    assert moved["weights"] == {"1": 0.9, "2": 0.1}
    response, switched = await api("POST", "deployments/prod/switch", body={"model": "2"})
    assert response.code == 200, switched
    assert switched["weights"] == {"2": 1.0}
    response, back = await api("POST", "deployments/prod/switch", body={"model": "lin@champion"})
    assert response.code == 200 and back["weights"] == {"1": 1.0}, back

    response, status = await api("GET", "monitor/prod")
    assert response.code == 200
    assert status == {"deployment": "prod", "model": "lin", "latest": None, "alerts": []}
    response, error = await api("POST", "monitor/prod", body={"window": "1h"})
    assert response.code == 404 and "deployment 'prod' has no captured traffic" in error["message"]

    shifted = np.random.default_rng(1).normal(0, 1, (400, 4))
    shifted[:, :3] += 3.0
    _send(deployed["url"], shifted)
    await wait_until_async(lambda: captured_rows("prod", lin, 400), "400 captured rows")
    response, result = await api("POST", "monitor/prod", body={"window": "1h"})
    assert response.code == 200, result
    assert result["triggered"] is True and result["actions"] == ["alert"]
    assert result["rows"] == 400

    response, status = await api("GET", "monitor/prod")
    latest = status["latest"]
    assert latest["run_id"] == result["run_id"] and latest["alert"] is True
    assert latest["rows"] == 400 and latest["columns_drifted"] == 3
    assert latest["share_drifted"] == pytest.approx(0.75)
    assert set(latest["drift_scores"]) == {"f0", "f1", "f2", "f3"}
    assert [a["run_id"] for a in status["alerts"]] == [result["run_id"]]
    response, body = await api("GET", "alerts")
    assert response.code == 200 and body["count"] == 1
    assert body["alerts"][0]["drifted_columns"] == ["f0", "f1", "f2"]

    response, stopped = await api("DELETE", "deployments/prod")
    assert response.code == 200 and stopped["status"] == "stopped"
    _, body = await api("GET", "deployments")
    assert body["deployments"][0]["status"] == "stopped"


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [
        ("POST", "deployments", {}, 400, "missing field 'model'"),
        ("POST", "deployments", {"model": "lin@@x"}, 400, "write it as name@alias"),
        ("POST", "deployments", {"model": "ghost@champion"}, 404, "no registered model 'ghost'"),
        ("POST", "deployments", {"model": "lin@staging"}, 404, "has no alias 'staging'"),
        ("POST", "deployments", {"model": "lin", "name": "a b"}, 400, "name 'a b'"),
        (
            "POST",
            "deployments",
            {"model": "lin", "canary": "lin/2", "canary_weight": 2},
            400,
            "canary weight must be between 0 and 1",
        ),
        ("DELETE", "deployments/ghost", None, 404, "no deployment 'ghost'"),
        ("PUT", "deployments/ghost/traffic", {"weights": {"1": 100}}, 404, "no deployment"),
        ("PUT", "deployments/ghost/traffic", {}, 400, "missing field 'weights'"),
        ("PUT", "deployments/x/traffic", {"weights": {"1": 90}}, 400, "must sum to 100, got 90"),
        ("PUT", "deployments/x/traffic", {"weights": {"1": "all"}}, 400, "is not a number"),
        ("PUT", "deployments/x/traffic", {"weights": {"1": 110, "2": -10}}, 400, "negative"),
        ("PUT", "deployments/x/traffic", {"weights": []}, 400, "'weights' must be dict"),
        ("POST", "deployments/ghost/switch", {"model": "2"}, 404, "no deployment 'ghost'"),
        ("POST", "deployments/ghost/switch", {}, 400, "missing field 'model'"),
        ("POST", "deployments/x/switch", {"model": " "}, 400, "field 'model' is empty"),
        ("GET", "monitor/ghost", None, 404, "no deployment 'ghost'"),
        ("POST", "monitor/ghost", {}, 404, "no deployment 'ghost'"),
        ("GET", "alerts?limit=-1", None, 400, "limit must be between 1 and 1000"),
        ("GET", "pipelines?limit=x", None, 400, "limit must be an integer"),
    ],
)
async def test_bad_deployment_and_monitor_requests(
    api: Api, lin: Settings, method: str, path: str, body: Any, status: int, message: str
) -> None:
    path, _, query = path.partition("?")
    params = dict([query.split("=")]) if query else None
    response, error = await api(method, path, body=body, params=params)
    assert response.code == status, error
    assert message in error["message"]


async def test_an_unexpected_failure_is_a_500_with_a_message(api: Api, served: Settings) -> None:
    alerts = served.state_dir / "alerts.jsonl"
    alerts.parent.mkdir(parents=True, exist_ok=True)
    before = alerts.read_bytes() if alerts.exists() else None
    alerts.write_text("{torn\n")
    try:
        response, error = await api("GET", "alerts")
    finally:
        if before is None:
            alerts.unlink()
        else:
            alerts.write_bytes(before)
    assert response.code == 500
    assert error["error"] == "JSONDecodeError" and "JSONDecodeError:" in error["message"]


@pytest.fixture(scope="module")
def pipeline_run(served: Settings) -> Path:
    from jupyter_mlops.pipelines.runner import run_pipeline

    folder = served.project_dir / "flow"
    folder.mkdir()
    step_notebook(folder / "fit.ipynb", "alpha = 1", "score = alpha * 2")
    path = pipeline_file(
        folder / "pipeline.yaml",
        {"name": "tiny", "steps": {"fit": {"notebook": "fit.ipynb", "params": {"alpha": 3}}}},
    )
    run_pipeline(path, settings=served, progress=False)
    return path


@pytest.mark.slow
async def test_pipelines(api: Api, pipeline_run: Path) -> None:
    response, body = await api("GET", "pipelines")
    assert response.code == 200, body
    [run] = body["pipelines"]
    assert run["name"] == "tiny" and run["status"] == "FINISHED"
    assert run["steps"] == {"fit": "FINISHED"} and run["failed_step"] is None
    _, body = await api("GET", "pipelines", params={"name": "other"})
    assert body == {"pipelines": []}
