"""The cell a kernel is running now, for the sidebar: its start, its line and its metrics so far.

A cell's record reaches the journal when the cell ends, so a 30 s training cell would show
nothing until then. A thread of the kernel looks at the running cell twice a second; once it
has run for ``SHOW_AFTER_S`` it writes ``<session>.live.json`` beside the journal (replaced
whole, never appended) with the values ``log_metrics(..., step=)`` has collected, and removes
the file when the cell is over. Short cells never write anything, and the kernel's thread
does no more than before: the thread reads the cell's lists, which only grow.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .preview import describe

#: a cell that ends sooner never shows as running
SHOW_AFTER_S = 1.0
#: how often the thread looks at the running cell
LOOK_EVERY_S = 0.5
#: points of each metric's history kept in the file (the latest), for a small chart
MAX_POINTS = 200
#: metric names kept in the file
MAX_METRICS = 20


class _Cell(Protocol):
    start: float
    raw: str
    cell_id: str | None
    skip: bool
    record_id: str
    metrics: list[list[Any]]


@dataclass
class LiveCell:
    """The running cell as a reader finds it in ``<session>.live.json``."""

    record_id: str
    cell_id: str | None
    start: int
    source_preview: str
    label: str | None
    #: name -> [[step, value], ...], the latest ``MAX_POINTS`` in step order
    history: dict[str, list[list[float]]]

    @property
    def metrics(self) -> dict[str, float]:
        """Each metric's latest value."""
        return {name: points[-1][1] for name, points in self.history.items() if points}


def history_of(metrics: list[list[Any]]) -> dict[str, list[list[float]]]:
    """``[name, value, step, time]`` rows as each name's points, the last value of a step
    winning, as in MLflow's charts."""
    by_name: dict[str, dict[int, float]] = {}
    for name, value, step, *_ in metrics:
        if name in by_name or len(by_name) < MAX_METRICS:
            by_name.setdefault(str(name), {})[int(step)] = float(value)
    return {
        name: [[float(s), v] for s, v in sorted(steps.items())][-MAX_POINTS:]
        for name, steps in by_name.items()
    }


def read_live(path: Path) -> LiveCell | None:
    """The running cell written at ``path``; None when there is none or it cannot be read."""
    try:
        data = json.loads(path.read_text())
        return LiveCell(
            record_id=str(data["record_id"]),
            cell_id=data.get("cell_id"),
            start=int(data["start"]),
            source_preview=str(data.get("source_preview", "")),
            label=data.get("label"),
            history={str(k): [[float(s), float(v)] for s, v in pts]
                     for k, pts in (data.get("history") or {}).items()},
        )  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError):
        return None


class LiveWriter:
    """Keeps ``<session>.live.json`` in step with the cell ``current()`` returns."""

    def __init__(self, path: Path, current: Any, mask: Any) -> None:
        self.path = path
        #: () -> the running cell or None; read on this writer's thread
        self._current = current
        #: str -> str with secrets masked, as the journal's source is
        self._mask = mask
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._written: tuple[str, int] | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="jupyter-mlops-live", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        self._remove()

    def _loop(self) -> None:
        while not self._stop.wait(LOOK_EVERY_S):
            try:
                self.look()
            except Exception:
                pass  # a sidebar nicety: never a reason to disturb the kernel

    def look(self) -> None:
        """Write, rewrite or remove the file for the cell running now."""
        cell: _Cell | None = self._current()
        if cell is None or cell.skip or time.time() - cell.start < SHOW_AFTER_S:
            self._remove()
            return
        state = (cell.record_id, len(cell.metrics))
        if state == self._written:
            return  # the reader computes the elapsed time from the start
        preview, label = describe(self._mask(cell.raw))
        data = {
            "record_id": cell.record_id,
            "cell_id": cell.cell_id,
            "start": int(cell.start * 1000),
            "source_preview": preview,
            "label": label,
            "history": history_of(list(cell.metrics)),
        }
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(data, out)
        os.replace(tmp, self.path)
        self._written = state

    def _remove(self) -> None:
        if self._written is not None:
            self._written = None
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
