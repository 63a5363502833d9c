"""MLflow's own UI through the Jupyter server: jupyter-server-proxy starts it on the
project's store at the first request, behind the server's authentication, on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest
from tornado.httpclient import AsyncHTTPClient

from jupyter_mlops.config import Settings
from jupyter_mlops.server import mlflow_ui
from tests.conftest import POLL_S, WAIT_S

pytestmark = pytest.mark.slow


@pytest.fixture
def jp_server_config() -> dict[str, Any]:
    return {
        "ServerApp": {"jpserver_extensions": {"jupyter_mlops": True, "jupyter_server_proxy": True}}
    }


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().decode(errors="replace").split("\0")
    except OSError:
        return []


def _ui_processes(settings: Settings) -> list[int]:
    """The processes serving this project's store: the runner, ``mlflow ui``, its server."""
    parents: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as fh:
                    parents[int(name)] = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found = {p for p in parents if any(settings.tracking_uri in a for a in _cmdline(p))}
    grew = True
    while grew:  # and every process they started
        more = {p for p, parent in parents.items() if parent in found} - found
        found |= more
        grew = bool(more)
    return sorted(found)


@pytest.fixture
def ui_stopped(lin: Settings) -> Iterator[Settings]:
    """Whatever the proxy started is stopped after the test, even when it fails."""
    try:
        yield lin
    finally:
        for pid in _ui_processes(lin):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


async def test_the_ui_is_served_on_the_project_store_behind_the_server_auth(
    jp_fetch: Any, jp_base_url: str, jp_http_port: int, ui_stopped: Settings
) -> None:
    # the first request starts `mlflow ui`: its imports take a while on a busy machine
    page = await jp_fetch("mlflow/", request_timeout=300)
    assert page.code == 200 and b"<title>MLflow</title>" in page.body
    answer = await jp_fetch(
        "mlflow",
        "ajax-api/2.0/mlflow/experiments/search",
        params={"max_results": "100"},
        request_timeout=120,
    )
    names = {e["name"] for e in json.loads(answer.body)["experiments"]}
    assert "models" in names  # the served project's own store
    models = await jp_fetch(
        "mlflow", "ajax-api/2.0/mlflow/registered-models/search", request_timeout=120
    )
    assert [m["name"] for m in json.loads(models.body)["registered_models"]] == ["lin"]
    runner = [p for p in _ui_processes(ui_stopped) if mlflow_ui.__name__ in _cmdline(p)]
    args = _cmdline(runner[0])
    assert args[args.index("--host") + 1] == "127.0.0.1"
    # no token, no page
    url = f"http://localhost:{jp_http_port}{jp_base_url}mlflow/"
    refused = await AsyncHTTPClient().fetch(url, raise_error=False, follow_redirects=False)
    assert refused.code in (302, 403), refused.code
    assert b"<title>MLflow</title>" not in (refused.body or b"")
    # stopping it (as the proxy does when the Jupyter server stops) stops all it started
    started = _ui_processes(ui_stopped)
    assert len(started) >= 3, started  # the runner, mlflow ui and its web server
    os.kill(runner[0], signal.SIGTERM)
    deadline = time.monotonic() + WAIT_S
    while set(started) & set(_ui_processes(ui_stopped)) and time.monotonic() < deadline:
        await asyncio.sleep(POLL_S)
    assert not set(started) & set(_ui_processes(ui_stopped))


def test_the_launcher_entry_opens_it_in_a_jupyterlab_tab() -> None:
    found = mlflow_ui.setup_mlflow_ui()
    assert found["launcher_entry"]["title"] == "MLflow"
    assert os.path.isfile(found["launcher_entry"]["icon_path"])
    assert found["new_browser_tab"] is False and found["absolute_url"] is False
