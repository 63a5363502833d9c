"""Every request's inputs, outputs, version, latency and time, written off the request path.

Requests append to an in-memory list; a background thread moves it to
``.mlops/inference/<deployment>/capture-<YYYYMMDD-HH>.jsonl`` every half second, one line
per request.
"""

from __future__ import annotations

import datetime
import json
import threading
import time
from pathlib import Path
from typing import Any


class CaptureWriter:
    def __init__(self, directory: Path, interval: float = 0.5):
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self._pending: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._interval = interval
        self.written = 0
        self._thread = threading.Thread(target=self._run, name="capture-writer", daemon=True)
        self._thread.start()

    def add(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._pending.append(entry)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.flush()
        self.flush()

    def flush(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
        if not batch:
            return
        hour = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H")
        lines = "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in batch)
        with open(self.directory / f"capture-{hour}.jsonl", "a", encoding="utf-8") as fh:
            fh.write(lines)
        self.written += len(batch)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def read_capture(directory: Path, since: float | None = None) -> list[dict[str, Any]]:
    """Captured requests (oldest first), optionally only those at or after ``since`` (epoch s)."""
    entries = []
    for path in sorted(directory.glob("capture-*.jsonl")):
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if since is None or entry.get("time", 0) >= since:
                    entries.append(entry)
    entries.sort(key=lambda e: e.get("time", 0))
    return entries


def now() -> float:
    return time.time()
