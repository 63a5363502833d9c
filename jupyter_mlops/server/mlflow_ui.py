"""MLflow's own UI on the project's store, served behind the Jupyter server.

jupyter-server-proxy (the ecosystem's way to put a web app behind a Jupyter server) finds
this through its ``jupyter_serverproxy_servers`` entry point: ``{base_url}mlflow/`` starts
``mlflow ui`` on a free 127.0.0.1 port at the first request and proxies to it, so the UI
is reached through the Jupyter server's own authentication and never listens outside the
machine; the launcher gets an "MLflow" entry that opens it in a JupyterLab tab. MLflow's
page uses relative URLs, so it works under the prefix as it is.

``mlflow ui`` runs its web server as a child process, which a SIGTERM to ``mlflow ui`` alone
leaves running; so the proxy starts this module, which runs ``mlflow ui`` in a process group
of its own and stops that whole group when it is told to stop or the Jupyter server is gone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

#: the Jupyter server's root directory, set when the server extension loads
ROOT: str | None = None
PREFIX = "mlflow"


def ui_command(port: int) -> list[str]:
    """``mlflow ui`` on the project's embedded store; a tracking server serves its own UI."""
    from ..config import load_settings

    settings = load_settings(ROOT)
    if not settings.is_embedded:
        # nothing to start here: say so on the page the proxy shows while waiting
        message = (
            f"this project's store is the tracking server {settings.tracking_uri}; "
            "open its own UI there"
        )
        return [sys.executable, "-c", f"import sys; sys.exit({message!r})"]
    return [
        sys.executable,
        "-m",
        __name__,
        "ui",
        "--backend-store-uri",
        settings.tracking_uri,
        "--default-artifact-root",
        settings.artifact_root.as_uri(),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]


def setup_mlflow_ui() -> dict[str, Any]:
    """jupyter-server-proxy's description of the MLflow UI server."""
    return {
        "command": ui_command,
        # MLflow's imports and its store migrations take a while on a busy machine
        "timeout": 120,
        "absolute_url": False,
        "new_browser_tab": False,
        # no job runner and its consumer processes: the UI only reads the store
        "environment": {
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        },
        "launcher_entry": {
            "title": "MLflow",
            "icon_path": str(Path(__file__).parent / "icons" / "mlflow-ui.svg"),
            "category": "Other",
        },
    }


def main(argv: list[str]) -> int:
    """Run ``mlflow *argv`` until told to stop or orphaned; then stop all it started."""
    from .._process import stop_process

    child = subprocess.Popen([sys.executable, "-m", "mlflow", *argv], start_new_session=True)
    parent = os.getppid()
    stopping = []

    def stop(signum: int, _frame: Any) -> None:
        stopping.append(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while child.poll() is None and not stopping and os.getppid() == parent:
        time.sleep(0.5)
    if child.poll() is None:
        stop_process(child)
    return child.returncode if child.returncode is not None else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
