"""Moves journal records into MLflow, outside the kernel's process.

MLflow's client is mostly Python; writing from a thread inside the kernel would compete
with the user's cells for the GIL (and put the 2-3 s ``import mlflow`` into the kernel).
So each kernel starts one drainer process (``python -m jupyter_mlops.tracking.drainer``)
that tails its session's journal, writes batches to the store and retries with backoff
while the store is down. It talks to the kernel over a pipe: commands in on stdin
(``flush TOKEN``), JSON events out on stdout. When the kernel goes away (stdin closes) it
finishes what it can and exits; whatever it could not write stays in the journal for the
next drain (the next ``%load_ext``, ``jupyter mlops flush``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import select
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..config import Settings, load_settings
from .journal import DrainState, FileLock, JournalPaths, is_locked, journals, read_records
from .sink import MlflowSink

#: How long a drainer whose kernel has gone keeps retrying a failing store.
GRACE_SECONDS = float(os.environ.get("JUPYTER_MLOPS_DRAIN_GRACE", "20"))
_MAX_BACKOFF = 10.0
#: While the journal keeps growing (cells run back to back) the writer holds off, so its
#: database writes do not stall the kernel's appends; it writes once the journal has been
#: quiet this long, or when the oldest unwritten record is ``HOLD_MAX_S`` old, or on a flush.
QUIET_S = 0.3
HOLD_MAX_S = 3.0


class _Pace:
    """Whether the kernel is appending right now, from the journal's size."""

    def __init__(self, journal: Path):
        self.journal = journal
        self.size = -1
        self.grew = 0.0
        self.waiting_since: float | None = None

    def busy(self) -> bool:
        now = time.monotonic()
        try:
            size = os.stat(self.journal).st_size
        except OSError:
            return False
        if size != self.size:
            self.size, self.grew = size, now
            if self.waiting_since is None:
                self.waiting_since = now
        if self.waiting_since is None:
            return False
        return now - self.grew < QUIET_S and now - self.waiting_since < HOLD_MAX_S

    def written(self) -> None:
        self.waiting_since = None


@dataclass
class DrainSummary:
    """What one drain pass did."""

    applied: int = 0
    journals_done: int = 0
    #: session id -> error message for journals that could not be drained
    failed: dict[str, str] = field(default_factory=dict)
    busy: list[str] = field(default_factory=list)


class JournalDrainer:
    """Drains one session journal; remembers the sink and the state between passes."""

    def __init__(self, settings: Settings, paths: JournalPaths):
        self.settings = settings
        self.paths = paths
        self.state = DrainState.load(paths.state)
        self._sink: MlflowSink | None = None
        # what an earlier drain wrote but could not save as progress is asked of the store
        # before anything is written: at start, and again after any failed batch
        self._reconciled = False

    def _save(self) -> None:
        self.state.save(self.paths.state)

    @property
    def sink(self) -> MlflowSink:
        if self._sink is None:
            self._sink = MlflowSink(self.settings, self.state, self._save)
        return self._sink

    def drain(self) -> int:
        """Apply every complete record not yet applied; raise on the first store failure."""
        applied = 0
        records = read_records(self.paths.journal, self.state.offset)
        if not records:
            return 0
        start = self.state.offset
        # progress is saved once per batch, not per record: the state file is rewritten far
        # less often, and a batch cut short is replayed after asking the store what it holds
        try:
            if not self._reconciled:
                self.sink.reconcile([record for _, record in records])
                self._reconciled = True
            for end, record in records:
                if record.get("type") == "session_end":
                    self.sink.flush_session_metrics()
                self.sink.apply(record)
                self.state.offset = end
                applied += 1
            self.sink.flush_session_metrics()
        except BaseException:
            # replay the whole batch: its session history may not be in the store yet
            self.state.offset = start
            self.sink.forget_batch()
            self._reconciled = False
            raise
        finally:
            self._save()
        return applied

    def finish_if_gone(self) -> bool:
        """Close and remove the journal once its kernel is gone and everything is written."""
        if is_locked(self.paths.kernel_lock):
            return False
        if read_records(self.paths.journal, self.state.offset):
            return False
        if self.state.session_run_id and not self.state.session_ended:
            self.sink.close_killed()
        self.paths.remove()
        return True


def drain_orphans(
    settings: Settings, *, exclude: str | None = None, wait: float = 0.0
) -> DrainSummary:
    """Drain journals no live drainer owns (a crashed kernel's, or a store that was down).

    ``wait`` is how long to wait for a journal another drainer is busy with.
    """
    summary = DrainSummary()
    for paths in list(journals(settings.journal_dir)):
        sid = paths.session_id
        if sid == exclude or not paths.journal.exists():
            continue
        lock = FileLock(paths.drain_lock)
        if not lock.acquire(timeout=wait):
            summary.busy.append(sid)
            continue
        try:
            if not paths.journal.exists():  # finished by its owner while we waited
                continue
            worker = JournalDrainer(settings, paths)
            summary.applied += worker.drain()
            if worker.finish_if_gone():
                summary.journals_done += 1
        except Exception as err:
            summary.failed[sid] = f"{type(err).__name__}: {err}"
        finally:
            lock.release()
    return summary


def pending_records(settings: Settings) -> int:
    """Records written to journals but not yet in the store."""
    total = 0
    for paths in journals(settings.journal_dir):
        state = DrainState.load(paths.state)
        total += len(read_records(paths.journal, state.offset))
    return total


# -- the drainer process ---------------------------------------------------------------------


def _emit(event: str, **fields: object) -> None:
    try:
        sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
        sys.stdout.flush()
    except (BrokenPipeError, ValueError):
        pass  # the kernel is gone; nobody to tell


def _short(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(err).__name__}: {first}"[:300]


class _Loop:
    def __init__(self, settings: Settings, paths: JournalPaths):
        self.worker = JournalDrainer(settings, paths)
        self.settings = settings
        self.failing = False
        self.backoff = 0.0
        self.next_try = 0.0
        self.orphans_done = False
        self.announced_run: str | None = None

    def attempt(self) -> bool:
        try:
            applied = self.worker.drain()
        except Exception as err:
            if not self.failing:
                _emit("store_error", message=_short(err), uri=self.settings.tracking_uri)
            self.failing = True
            self.backoff = min(max(0.5, self.backoff * 2), _MAX_BACKOFF)
            self.next_try = time.monotonic() + self.backoff
            return False
        if self.failing:
            _emit("store_ok")
        self.failing = False
        self.backoff = 0.0
        run_id = self.worker.state.session_run_id
        if run_id and run_id != self.announced_run:
            self.announced_run = run_id
            _emit("session", run_id=run_id, experiment_id=self.worker.state.experiment_id)
        if applied:
            _emit("progress", offset=self.worker.state.offset)
        if not self.orphans_done:
            self.orphans_done = True
            drain_orphans(self.settings, exclude=self.worker.paths.session_id)
        return True

    def final(self) -> None:
        """The kernel closed our pipe: write what we can, then leave."""
        deadline = time.monotonic() + GRACE_SECONDS
        while not self.attempt() and time.monotonic() < deadline:
            time.sleep(max(0.0, min(self.next_try, deadline) - time.monotonic()))
        # the kernel may still be releasing its lock as it exits
        kernel_lock = FileLock(self.worker.paths.kernel_lock)
        if kernel_lock.acquire(timeout=5.0):
            kernel_lock.release()
            if not self.failing:
                try:
                    self.worker.finish_if_gone()
                except Exception as err:
                    _emit("store_error", message=_short(err), uri=self.settings.tracking_uri)


def run(settings: Settings, session_id: str, read_line: Callable[[float], str | None]) -> None:
    """The drainer's main loop; ``read_line(timeout)`` returns a command, '' at EOF, or None."""
    paths = JournalPaths.for_session(settings.journal_dir, session_id)
    lock = FileLock(paths.drain_lock)
    if not lock.acquire(timeout=30.0):
        _emit("store_error", message="another process holds this session's journal")
        return
    loop = _Loop(settings, paths)
    pace = _Pace(paths.journal)
    _emit("started", pid=os.getpid())
    try:
        while True:
            timeout = 0.2 if not loop.failing else max(0.05, loop.next_try - time.monotonic())
            line = read_line(min(timeout, 0.5))
            if line == "":
                loop.final()
                return
            if line is None and (time.monotonic() < loop.next_try or pace.busy()):
                continue
            ok = loop.attempt()
            if ok:
                pace.written()
            if line and line.startswith("flush"):
                token = line.split(maxsplit=1)[1] if " " in line else ""
                _emit("flushed", token=token, ok=ok, offset=loop.worker.state.offset)
    finally:
        lock.release()


def _stdin_reader(timeout: float) -> str | None:
    ready, _, _ = select.select([sys.stdin], [], [], timeout)
    if not ready:
        return None
    line = sys.stdin.readline()
    return line.strip() if line else ""


def _quiet() -> None:
    logging.basicConfig(level=logging.WARNING)
    for name in ("mlflow", "alembic", "sqlalchemy"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # MLflow's HTTP client otherwise retries for minutes; we retry ourselves, with backoff
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    # MLflow prints a "View run" link per finished run against a server: not for a pipe
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m jupyter_mlops.tracking.drainer")
    parser.add_argument("--project", required=True)
    parser.add_argument("--session", required=True)
    args = parser.parse_args(argv)
    # background work: the user's kernel gets the CPU first
    with contextlib.suppress(OSError):
        os.nice(10)
    _quiet()
    run(load_settings(args.project), args.session, _stdin_reader)


if __name__ == "__main__":
    main()
