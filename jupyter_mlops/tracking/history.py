"""Keeps IPython's own history writes out of the way of cells run back to back.

IPython writes each cell's input to its history database from a thread that holds a lock
while it commits; the next cell takes the same lock to queue its input, so it waits for that
commit, and a commit waits longer for the disk while the tracking writer writes the store.
That wait was most of a tracked kernel's slowest cells. While cells come one after another
the history is kept in memory (IPython's own ``db_cache_size``, raised) and written once the
kernel has been idle for a moment, at the end of the session, or when the cache is full.
Nothing is lost that the journal does not hold too: every tracked cell's source is in it.
"""

from __future__ import annotations

import threading
import time
from typing import Any

#: inputs held in memory at most while cells run back to back
BUSY_CACHE = 1000
#: seconds without a running cell after which the history is written
IDLE_S = 0.3


class HistoryPacer:
    """Raises the shell's history cache while cells run, and writes it out when idle."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self._history: Any = getattr(shell, "history_manager", None)
        self._before: int | None = None
        self._busy = False
        self._ended = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def active(self) -> bool:
        return self._thread is not None

    def install(self) -> HistoryPacer:
        history = self._history
        if (
            history is None
            or not getattr(history, "enabled", False)
            or not getattr(history, "using_thread", True)
            or not isinstance(getattr(history, "db_cache_size", None), int)
        ):
            return self  # no history database, or one written in the kernel's own thread
        self._before = history.db_cache_size
        history.db_cache_size = max(history.db_cache_size, BUSY_CACHE)
        self.shell.events.register("pre_execute", self._started)
        self.shell.events.register("post_execute", self._finished)
        self._thread = threading.Thread(target=self._loop, name="mlops-history", daemon=True)
        self._thread.start()
        return self

    def uninstall(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        for name, hook in (("pre_execute", self._started), ("post_execute", self._finished)):
            try:
                self.shell.events.unregister(name, hook)
            except ValueError:
                pass
        history = self._history
        if self._before is not None:
            history.db_cache_size = self._before
        self._write_out()

    def _started(self) -> None:
        self._busy = True

    def _finished(self) -> None:
        self._busy = False
        self._ended = time.monotonic()

    def _loop(self) -> None:
        while not self._stop.wait(IDLE_S / 2):
            if not self._busy and time.monotonic() - self._ended >= IDLE_S:
                self._write_out()

    def _write_out(self) -> None:
        history = self._history
        try:
            if history.db_input_cache or history.db_output_cache:
                flag = history.save_flag
                if flag is not None:
                    flag.set()  # IPython's own saving thread writes it, under its own lock
        except Exception:
            pass
