"""The Jupyter server whose jupyter-scheduler runs the project's jobs, and its REST API.

jupyter-scheduler keeps its job definitions in a database, but the server that runs them
reads that database once, when it starts: a definition only runs on time when it is made
through the running server's own API, so schedules are always made there.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .cron import ScheduleError

_TIMEOUT = 30.0


@dataclass(frozen=True)
class JupyterServer:
    url: str
    root_dir: Path
    #: from the server's runtime file (readable by its owner only); sent as a header
    token: str

    def relative(self, path: Path) -> str:
        """``path`` as the server's API names it: relative to its root, with ``/``."""
        return path.resolve().relative_to(self.root_dir).as_posix()

    def call(
        self, method: str, path: str, body: Any = None, query: dict[str, Any] | None = None
    ) -> Any:
        """The JSON answer of ``METHOD /path``; an error status raises ``ScheduleError``
        with the server's message."""
        url = self.url.rstrip("/") + "/" + path.lstrip("/")
        if query:
            url += "?" + urllib.parse.urlencode(query, doseq=True)
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Authorization", f"token {self.token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=_TIMEOUT) as response:
                text = response.read().decode()
        except urllib.error.HTTPError as err:
            raise ScheduleError(f"{self.url}: {method} {path}: {_message(err)}") from None
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise ScheduleError(
                f"{self.url}: the Jupyter server did not answer: {reason}"
            ) from None
        return json.loads(text) if text.strip() else None


def _message(err: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(err.read().decode() or "{}")
    except ValueError:
        body = {}
    return str(body.get("message") or body.get("reason") or f"HTTP {err.code}")


def _serves(info: dict[str, Any], project: Path) -> bool:
    root = Path(info.get("root_dir") or info.get("notebook_dir") or "/").resolve()
    return project == root or root in project.parents


def find_server(project: Path) -> JupyterServer:
    """The running Jupyter server with jupyter-scheduler whose root holds ``project`` (the
    one rooted closest to it, when several do)."""
    from jupyter_server.serverapp import list_running_servers

    project = project.resolve()
    found = [info for info in list_running_servers() if _serves(info, project)]
    found.sort(key=lambda info: len(Path(info["root_dir"]).resolve().parts), reverse=True)
    if not found:
        raise ScheduleError(
            f"no running Jupyter server serves {project}: jupyter-scheduler runs scheduled "
            "jobs inside one; start `jupyter lab` in the project (or a folder above it) and "
            "schedule again"
        )
    without: list[str] = []
    for info in found:
        server = JupyterServer(
            url=info["url"], root_dir=Path(info["root_dir"]).resolve(), token=info.get("token", "")
        )
        try:
            server.call("GET", "scheduler/config")
        except ScheduleError:
            without.append(server.url)
            continue
        return server
    raise ScheduleError(
        f"the Jupyter server at {', '.join(without)} has no jupyter-scheduler: "
        "pip install 'jupyter-mlops[schedule]' and restart it"
    )
