"""A real Jupyter server with jupyter-scheduler over a temporary folder that holds the
project, with its runtime, data and config folders of its own."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from jupyter_mlops.scheduling.jupyter_server import JupyterServer, find_server
from tests.conftest import free_port, wait_until

#: jupyter-scheduler checks its queue every 10 s by default; a test's jobs are seconds apart
POLL_S = 1


@pytest.fixture
def jupyter_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Runtime, data and config folders of this test alone, for the server and for us (we
    find the server through its runtime file)."""
    dirs = {
        "JUPYTER_RUNTIME_DIR": tmp_path / "jupyter-runtime",
        "JUPYTER_DATA_DIR": tmp_path / "jupyter-data",
        "JUPYTER_CONFIG_DIR": tmp_path / "jupyter-config",
    }
    for key, folder in dirs.items():
        folder.mkdir(mode=0o700)
        monkeypatch.setenv(key, str(folder))
    return dirs


def _start_server(
    tmp_path: Path,
    jupyter_dirs: dict[str, Path],
    stop_later: Callable[[subprocess.Popen[Any] | int], None],
    ready: Callable[[Path], Any],
    **config: Any,
) -> Any:
    """``jupyter server`` rooted at the folder above ``project/`` (as a user starting JupyterLab
    in their home would), with ``config`` added to its config file; what ``ready(project)``
    returns once it is not None."""
    path = jupyter_dirs["JUPYTER_CONFIG_DIR"] / "jupyter_server_config.json"
    token = secrets.token_hex(16)
    path.write_text(
        json.dumps(
            {
                "IdentityProvider": {"token": token},
                "TaskRunner": {"poll_interval": POLL_S},
                **config,
            }
        )
    )  # the token in a private file: never on a command line
    path.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    log = (tmp_path / "jupyter-server.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "jupyter_server", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={free_port()}", "--ServerApp.port_retries=0",
            f"--ServerApp.root_dir={tmp_path}",
        ],
        cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    stop_later(proc)
    log.close()  # the child holds its own copy
    project = tmp_path / "project"

    def found() -> Any:
        if proc.poll() is not None:
            raise AssertionError(
                f"jupyter server exited {proc.returncode}:\n"
                + (tmp_path / "jupyter-server.log").read_text()[-3000:]
            )
        try:
            return ready(project)
        except Exception:
            return None

    return wait_until(found, "the Jupyter server", timeout=120), token


@pytest.fixture
def scheduler_server(
    tmp_path: Path,
    jupyter_dirs: dict[str, Path],
    stop_later: Callable[[subprocess.Popen[Any] | int], None],
) -> JupyterServer:
    """A server with jupyter-scheduler, found the way ``jupyter mlops schedule`` finds it."""
    server, token = _start_server(tmp_path, jupyter_dirs, stop_later, find_server)
    assert server.token == token
    return server


@pytest.fixture
def plain_server(
    tmp_path: Path,
    jupyter_dirs: dict[str, Path],
    stop_later: Callable[[subprocess.Popen[Any] | int], None],
) -> dict[str, Any]:
    """A server of the project with jupyter-scheduler turned off: its runtime record."""
    from jupyter_server.serverapp import list_running_servers

    def listed(_project: Path) -> dict[str, Any] | None:
        return next(iter(list_running_servers()), None)

    off = {"ServerApp": {"jpserver_extensions": {"jupyter_scheduler": False}}}
    info, _ = _start_server(tmp_path, jupyter_dirs, stop_later, listed, **off)
    return dict(info)
