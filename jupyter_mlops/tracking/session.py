"""One kernel's tracking session: its journal, its drainer, its recorder.

Environment a runner can set for a kernel it starts (papermill, tests):

- ``JUPYTER_MLOPS_NOTEBOOK``: path of the notebook being executed;
- ``JUPYTER_MLOPS_SESSION_RUN_ID``: an existing run (a pipeline step) that the cells nest
  under instead of a new session run;
- ``JUPYTER_MLOPS_PARENT_RUN_ID``: make the new session run a child of this run.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import Settings
from .drainer_client import DrainerHandle, Event
from .files import FileWatch
from .history import HistoryPacer
from .journal import FileLock, JournalPaths, JournalWriter
from .live import LiveWriter
from .recorder import CellRecorder

#: Experiment of a session whose notebook is unknown (a console, a script).
INTERACTIVE_EXPERIMENT = "interactive"


def detect_notebook(user_ns: dict[str, Any], cwd: Path | None = None) -> Path | None:
    """The notebook this kernel runs, from what JupyterLab, VS Code or our runner tell it."""
    candidates = [
        os.environ.get("JUPYTER_MLOPS_NOTEBOOK"),
        user_ns.get("__vsc_ipynb_file__"),
        user_ns.get("__session__"),
        os.environ.get("JPY_SESSION_NAME"),
    ]
    here = cwd or Path.cwd()
    for raw in candidates:
        if not raw or not isinstance(raw, str):
            continue
        path = Path(raw)
        if not path.is_absolute():
            # a server path relative to its root; the kernel runs in the notebook's folder
            by_name = here / path.name
            path = by_name if by_name.exists() else here / path
        if path.suffix == ".ipynb":
            return path.resolve()
    return None


@dataclass
class SessionInfo:
    """What ``%mlops status`` shows."""

    session_id: str
    enabled: bool
    project_dir: str
    tracking_uri: str
    experiment: str
    notebook: str | None
    session_run_id: str | None
    drainer_pid: int | None
    drainer_alive: bool
    cells_recorded: int
    bytes_pending: int
    #: records waiting in memory because the journal could not be written
    records_waiting: int = 0
    #: records dropped because too many were waiting
    records_dropped: int = 0


class TrackingSession:
    """Starts on ``%load_ext``; ends on unload or kernel exit."""

    def __init__(self, shell: Any, settings: Settings):
        self.settings = settings
        self.session_id = uuid.uuid4().hex
        self.notebook = detect_notebook(getattr(shell, "user_ns", {}))
        self.experiment = (
            settings.relative(self.notebook) if self.notebook else INTERACTIVE_EXPERIMENT
        )
        paths = JournalPaths.for_session(settings.journal_dir, self.session_id)
        self.paths = paths
        self._kernel_lock = FileLock(paths.kernel_lock)
        self._kernel_lock.acquire(timeout=None)
        self.journal = JournalWriter(paths)
        self.recorder = CellRecorder(
            shell,
            self.journal,
            self.session_id,
            settings.tracking,
            enabled=settings.tracking.enabled,
            files=(
                FileWatch(settings.project_dir, skip=[settings.state_dir]).install()
                if settings.tracking.files
                else None
            ),
        )
        self.drainer = DrainerHandle(settings, self.session_id, self._on_event)
        recorder = self.recorder
        self.live = LiveWriter(paths.live, lambda: recorder.running, recorder.redactor.peek_source)
        self.history = HistoryPacer(shell)
        self._store_warned = False
        self._ended = False

    def start(self) -> None:
        now = int(time.time() * 1000)
        self.journal.append(
            {
                "type": "session_start",
                "session": self.session_id,
                "time": now,
                "experiment": self.experiment,
                "notebook": str(self.notebook) if self.notebook else None,
                "run_name": time.strftime("session %Y-%m-%d %H:%M:%S"),
                "session_run_id": os.environ.get("JUPYTER_MLOPS_SESSION_RUN_ID") or None,
                "parent_run_id": os.environ.get("JUPYTER_MLOPS_PARENT_RUN_ID") or None,
                "tags": {"mlops.kernel_pid": os.getpid()},
            }
        )
        self.drainer.start()
        self.recorder.register()
        self.history.install()
        self.live.start()

    def move(self, notebook: Path) -> None:
        """The notebook was renamed or moved: later cells are recorded under its new path.

        The journal says so first, so the writer, the sidebar's pending rows and a writer
        that restarts all see the same path (see ``moves.py``).
        """
        self.notebook = notebook.resolve()
        self.experiment = self.settings.relative(self.notebook)
        self.journal.append(
            {
                "type": "session_move",
                "session": self.session_id,
                "time": int(time.time() * 1000),
                "experiment": self.experiment,
                "notebook": str(self.notebook),
            }
        )

    def _on_event(self, event: Event) -> None:
        """Called on the monitor thread; only queues notices for the kernel's thread."""
        kind = event.get("event")
        if kind == "store_error" and not self._store_warned:
            self._store_warned = True
            self.recorder.warn(
                f"tracking store unavailable ({event.get('message')}). Your cells run as "
                f"usual; records are kept in {self.settings.relative(self.paths.journal)} "
                "and written when the store is back."
            )
        elif kind == "store_ok" and self._store_warned:
            self._store_warned = False
            self.recorder.warn("tracking store reachable again; journal replayed.")
        elif kind == "drainer_exit":
            logs = self.settings.relative(self.settings.state_dir / "logs")
            if event.get("restarting"):
                self.recorder.warn(
                    f"the tracking writer stopped (exit code {event.get('code')}); restarted "
                    f"it. Log: {logs}"
                )
            else:
                self.recorder.warn(
                    f"the tracking writer stopped (exit code {event.get('code')}) "
                    f"{event.get('crashes')} times in a row: tracking writes are paused. "
                    f"Records are kept in {self.settings.relative(self.paths.journal)}; "
                    f"%mlops flush restarts the writer. Log: {logs}"
                )

    def info(self) -> SessionInfo:
        return SessionInfo(
            session_id=self.session_id,
            enabled=self.recorder.enabled,
            project_dir=str(self.settings.project_dir),
            tracking_uri=self.settings.tracking_uri,
            experiment=self.experiment,
            notebook=str(self.notebook) if self.notebook else None,
            session_run_id=self.drainer.session_run_id,
            drainer_pid=self.drainer.pid,
            drainer_alive=self.drainer.alive,
            cells_recorded=self.recorder.recorded,
            bytes_pending=max(0, self.journal.bytes_written - self.drainer.offset),
            records_waiting=len(self.journal.waiting),
            records_dropped=self.journal.dropped,
        )

    def flush(self, timeout: float = 30.0) -> Event | None:
        """Write everything recorded so far to the store; the drainer's answer."""
        self.recorder.save_waiting()
        if not self.drainer.alive:
            # paused after too many crashes: an explicit flush is the way to resume
            self.drainer.restart()
        return self.drainer.flush(timeout)

    def end(self, status: str = "FINISHED", wait: float = 0.0) -> None:
        """Close the session run and hand the rest to the writer process.

        The writer outlives the kernel (its own process session) and finishes the journal
        once the kernel's lock is free, so shutdown waits for nothing unless ``wait`` asks.
        """
        if self._ended:
            return
        self._ended = True
        self.recorder.unregister()
        self.history.uninstall()
        self.live.stop()
        if self.recorder.files is not None:
            self.recorder.files.uninstall()
        with contextlib.suppress(OSError):
            self.journal.append(
                {
                    "type": "session_end",
                    "session": self.session_id,
                    "time": int(time.time() * 1000),
                    "status": status,
                }
            )
        if wait > 0:
            self.drainer.flush(wait)
        self.journal.close()
        if self.journal.waiting:
            self.recorder.warn(
                f"{len(self.journal.waiting)} tracking record(s) are lost: the disk did not "
                f"take them before the kernel stopped ({self.journal.error})"
            )
            self.recorder.show_warnings()
        self._kernel_lock.release()
        if not self.drainer.alive:
            # paused or crashed: a detached writer still finishes what the kernel leaves
            self.drainer.restart()
        self.drainer.close()
