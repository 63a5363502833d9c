"""Stop what the browser tests left running in the project they served.

``python stop_servers.py ROOT [JUPYTER_URL]`` shuts down every kernel of the Jupyter server
at ``JUPYTER_URL`` (through its REST API, so the server cleans up after them) and stops
every model server of ``ROOT/.mlops/deployments/*/state.json`` that still runs, and MLflow's
UI on the project's store: SIGTERM, then SIGKILL, its whole process group. Run by the global teardown, failed tests or not.
"""

from __future__ import annotations

import json
import sys
import urllib.request
from pathlib import Path

from jupyter_mlops._process import stop_process

# a pid in state.json may have been reused by an unrelated process since
SERVER_MODULE = b"jupyter_mlops.serving"


def shutdown_kernels(url: str) -> int:
    try:
        with urllib.request.urlopen(f"{url}/api/kernels", timeout=30) as response:
            kernels = json.loads(response.read())
    except OSError as err:
        print(f"stop_servers: no kernel list from {url}: {err}")
        return 0
    for kernel in kernels:
        request = urllib.request.Request(f"{url}/api/kernels/{kernel['id']}", method="DELETE")
        try:
            urllib.request.urlopen(request, timeout=60).close()
            print(f"stop_servers: shut down kernel {kernel['id']}")
        except OSError as err:
            print(f"stop_servers: kernel {kernel['id']}: {err}")
    return len(kernels)


def stop_deployments(root: Path) -> int:
    stopped = 0
    for state_file in sorted(root.glob(".mlops/deployments/*/state.json")):
        try:
            state = json.loads(state_file.read_text(encoding="utf-8"))
            pid = int(state["pid"])
        except (OSError, ValueError, KeyError, TypeError) as err:
            print(f"stop_servers: {state_file}: {err}")  # the others still get stopped
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue  # gone
        if SERVER_MODULE not in cmdline:
            continue
        code = stop_process(pid, grace=15)
        print(f"stop_servers: stopped deployment {state['id']} (pid {pid}, exit {code})")
        stopped += 1
    return stopped


def stop_mlflow_ui(root: Path) -> int:
    """MLflow's UI the Jupyter server's proxy started on the project's store, if any is left:
    ``mlflow ui`` leads a process group of its own, so its web server goes with it."""
    store = str(root / ".mlops" / "mlflow.db").encode()
    stopped = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if store in cmdline and b"\0mlflow\0ui\0" in b"\0" + cmdline:
            code = stop_process(int(entry.name), grace=15)
            print(f"stop_servers: stopped MLflow's UI (pid {entry.name}, exit {code})")
            stopped += 1
    return stopped


def main(argv: list[str]) -> None:
    root = Path(argv[0])
    kernels = shutdown_kernels(argv[1].rstrip("/")) if len(argv) > 1 else 0
    servers = stop_deployments(root) + stop_mlflow_ui(root)
    print(f"stop_servers: {kernels} kernel(s) left running, {servers} server(s) left running")


if __name__ == "__main__":
    main(sys.argv[1:])
