"""Every GET answer carries an ETag: a poller that sends it back gets an empty 304 until
what the route answers changes."""

from __future__ import annotations

import pytest

from jupyter_mlops.config import Settings
from jupyter_mlops.registry.service import promote
from tests.server.conftest import Api


@pytest.mark.parametrize("route", ["status", "models", "pipelines", "deployments", "alerts"])
async def test_an_unchanged_answer_is_a_304_without_a_body(
    api: Api, lin: Settings, route: str
) -> None:
    first, body = await api("GET", route)
    etag = first.headers["ETag"]
    assert first.code == 200 and body is not None and etag.startswith('"')
    again, empty = await api("GET", route, headers={"If-None-Match": etag})
    assert again.code == 304 and empty is None and again.headers["ETag"] == etag
    # a list of tags, weak or not, as browsers and proxies send them
    listed, _ = await api("GET", route, headers={"If-None-Match": f'"other", W/{etag}'})
    assert listed.code == 304
    stale, fresh = await api("GET", route, headers={"If-None-Match": '"other"'})
    assert stale.code == 200 and fresh == body


async def test_a_change_gives_a_new_etag_and_the_new_answer(api: Api, lin: Settings) -> None:
    first, before = await api("GET", "models")
    promote("lin", 1, "staging", settings=lin)
    changed, after = await api("GET", "models", headers={"If-None-Match": first.headers["ETag"]})
    assert changed.code == 200 and changed.headers["ETag"] != first.headers["ETag"]
    assert after["models"][0]["aliases"]["staging"] == "1"
    assert "staging" not in before["models"][0]["aliases"]


async def test_errors_and_writes_carry_no_etag(api: Api, lin: Settings) -> None:
    missing, _ = await api("GET", "runs/0123456789abcdef0123456789abcdef")
    assert missing.code == 404 and "ETag" not in missing.headers
    written, _ = await api("POST", "models/lin/promote", body={"version": 1, "alias": "canary"})
    assert written.code == 200 and "ETag" not in written.headers
