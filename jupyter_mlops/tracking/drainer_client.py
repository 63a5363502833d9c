"""Kernel side of the drainer: starts the process, reads its events, asks it to flush.

A monitor thread blocks on the drainer's stdout (the read releases the GIL), so the
kernel pays nothing between events.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from ..config import Settings

Event = dict[str, Any]

#: Crashes in a row (with no write in between) after which writes pause until a flush.
MAX_CRASHES = 3


def _package_root() -> str:
    return str(Path(__file__).resolve().parents[2])


def start_writer(settings: Settings, session_id: str, *, stdin: int) -> subprocess.Popen[bytes]:
    """The writer process of one journal, in its own session (a kernel interrupt, SIGINT to
    the group, must not kill it), logging to ``.mlops/logs/drainer-<session>.log``.

    With ``stdin=subprocess.DEVNULL`` it writes what the journal holds and exits: how a
    process that is not a kernel hands its records over and leaves at once.
    """
    logs = settings.state_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (_package_root(), env.get("PYTHONPATH", "")) if p
    )
    log_path = logs / f"drainer-{session_id}.log"
    with open(os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "ab") as log:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyter_mlops.tracking.drainer",
                "--project",
                str(settings.project_dir),
                "--session",
                session_id,
            ],
            stdin=stdin,
            stdout=subprocess.PIPE if stdin == subprocess.PIPE else subprocess.DEVNULL,
            stderr=log,
            cwd=settings.project_dir,
            env=env,
            start_new_session=True,
        )


class DrainerHandle:
    """One drainer process for one session journal."""

    def __init__(self, settings: Settings, session_id: str, on_event: Callable[[Event], None]):
        self.settings = settings
        self.session_id = session_id
        self._on_event = on_event
        self._proc: subprocess.Popen[bytes] | None = None
        self._closing = False
        self._crashes = 0
        self._tokens = itertools.count(1)
        self._waiters: dict[str, tuple[threading.Event, list[Event]]] = {}
        self._lock = threading.Lock()
        self.offset = 0
        self.session_run_id: str | None = None
        self.experiment_id: str | None = None

    def start(self) -> None:
        self._proc = start_writer(self.settings, self.session_id, stdin=subprocess.PIPE)
        proc = self._proc
        assert proc.stdout is not None
        threading.Thread(
            target=self._monitor,
            args=(proc, proc.stdout),
            name="jupyter-mlops-drainer-monitor",
            daemon=True,
        ).start()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def crashes(self) -> int:
        """Crashes in a row; at ``MAX_CRASHES`` writes pause until ``restart``."""
        return self._crashes

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _monitor(self, proc: subprocess.Popen[bytes], stdout: IO[bytes]) -> None:
        for raw in stdout:
            try:
                event = json.loads(raw)
            except ValueError:
                continue
            self._handle(event)
        code = proc.wait()
        if self._closing or proc is not self._proc:
            return
        self._crashes += 1
        restarting = self._crashes < MAX_CRASHES
        self._on_event(
            {
                "event": "drainer_exit",
                "code": code,
                "crashes": self._crashes,
                "restarting": restarting,
            }
        )
        if restarting:
            self.start()

    def restart(self) -> None:
        """Start the writer again after it stopped (an explicit ``flush`` resumes writes)."""
        if self.alive:
            return
        self._crashes = 0
        self.start()

    def _handle(self, event: Event) -> None:
        kind = event.get("event")
        if kind in ("progress", "flushed"):
            self.offset = max(self.offset, int(event.get("offset", 0)))
            if kind == "progress" or event.get("ok"):
                self._crashes = 0  # it writes: earlier crashes are forgiven
        if kind == "session":
            self.session_run_id = event.get("run_id")
            self.experiment_id = event.get("experiment_id")
        if kind == "flushed":
            with self._lock:
                waiter = self._waiters.pop(str(event.get("token")), None)
            if waiter:
                waiter[1].append(event)
                waiter[0].set()
        self._on_event(event)

    def _send(self, line: str) -> bool:
        proc = self._proc
        if proc is None or proc.stdin is None or proc.poll() is not None:
            return False
        try:
            proc.stdin.write((line + "\n").encode())
            proc.stdin.flush()
        except (BrokenPipeError, ValueError, OSError):
            return False
        return True

    def flush(self, timeout: float = 10.0) -> Event | None:
        """Ask the drainer to write everything now; its answer, or None on timeout."""
        token = str(next(self._tokens))
        done = threading.Event()
        answer: list[Event] = []
        with self._lock:
            self._waiters[token] = (done, answer)
        if not self._send(f"flush {token}"):
            with self._lock:
                self._waiters.pop(token, None)
            return None
        done.wait(timeout)
        return answer[0] if answer else None

    def close(self, wait: float = 0.0) -> None:
        """Close the pipe; the drainer finishes on its own. Wait up to ``wait`` seconds."""
        self._closing = True
        proc = self._proc
        if proc is None:
            return
        if proc.stdin is not None:
            try:
                proc.stdin.close()
            except OSError:
                pass
        if wait > 0:
            try:
                proc.wait(wait)
            except subprocess.TimeoutExpired:
                pass
