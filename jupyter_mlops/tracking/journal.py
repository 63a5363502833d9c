"""The write-ahead journal: every tracking record lands here before it reaches MLflow.

One journal per kernel session, ``.mlops/journal/<session>.jsonl``. The kernel appends a
JSON line per record with a single unbuffered ``write`` (microseconds; survives a crashed
kernel). A drainer moves records into MLflow and keeps its progress in
``<session>.state.json``. Two advisory locks say who is alive:

- ``<session>.kernel.lock`` is held by the kernel for its whole life, so a free lock means
  the session's kernel is gone;
- ``<session>.drain.lock`` is held by whichever process drains the journal, so two
  drainers never replay the same records.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

Record = dict[str, Any]


def _dumps(record: Record) -> str:
    return json.dumps(record, separators=(",", ":"), default=str, allow_nan=False)


@dataclass
class JournalPaths:
    """The files of one session's journal."""

    journal: Path

    @classmethod
    def for_session(cls, journal_dir: Path, session_id: str) -> JournalPaths:
        return cls(journal_dir / f"{session_id}.jsonl")

    @property
    def session_id(self) -> str:
        return self.journal.stem

    @property
    def state(self) -> Path:
        return self.journal.with_suffix(".state.json")

    @property
    def kernel_lock(self) -> Path:
        return self.journal.with_suffix(".kernel.lock")

    @property
    def drain_lock(self) -> Path:
        return self.journal.with_suffix(".drain.lock")

    @property
    def live(self) -> Path:
        """The cell the kernel is running now (``live.py``)."""
        return self.journal.with_suffix(".live.json")

    def remove(self) -> None:
        for p in (self.journal, self.state, self.kernel_lock, self.drain_lock, self.live):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()


#: Records kept in memory while the journal cannot be written (a full or failing disk).
MAX_WAITING = int(os.environ.get("JUPYTER_MLOPS_MAX_WAITING", "10000"))


class JournalWriter:
    """Kernel side: appends records, one ``os.write`` each.

    When the disk refuses a write (full, failing, read-only), the record waits in a bounded
    queue in memory and every later append, ``retry()`` or ``close()`` tries to write the
    queue first, in order. Past ``MAX_WAITING`` the oldest waiting records are dropped and
    counted in ``dropped``; nothing is lost without being counted.
    """

    def __init__(self, paths: JournalPaths, max_waiting: int = MAX_WAITING):
        paths.journal.parent.mkdir(parents=True, exist_ok=True)
        self.paths = paths
        self._fd = os.open(paths.journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self.bytes_written = os.fstat(self._fd).st_size
        self.max_waiting = max_waiting
        self.waiting: deque[bytes] = deque()
        self.dropped = 0
        #: records that had to wait since the queue was last empty
        self.waited = 0
        #: the error that made records wait, until they are all written
        self.error: OSError | None = None
        # a torn write that could not be cut off: the next line starts on a fresh line
        self._torn = False

    def append(self, record: Record) -> bool:
        """Write ``record`` (after any waiting ones); False when it had to wait in memory."""
        data = (_dumps(record) + "\n").encode()
        if self.waiting and not self.retry():
            self._wait(data)
            return False
        try:
            self._write(data)
        except OSError as err:
            self.error = err
            self._wait(data)
            return False
        return True

    def retry(self) -> bool:
        """Write waiting records; True when none is left waiting."""
        while self.waiting:
            try:
                self._write(self.waiting[0])
            except OSError as err:
                self.error = err
                return False
            self.waiting.popleft()
        self.error = None
        return True

    def _wait(self, data: bytes) -> None:
        if not self.waiting:
            self.waited = 0
        self.waited += 1
        self.waiting.append(data)
        while len(self.waiting) > self.max_waiting:
            self.waiting.popleft()
            self.dropped += 1

    def _write(self, data: bytes) -> None:
        if self._fd < 0:
            raise OSError(errno.EBADF, "the journal is closed")
        if self._torn:
            data = b"\n" + data
        written = os.write(self._fd, data)
        if written < len(data):
            # a short write on a full disk: cut it off so the next record is a clean line
            try:
                os.ftruncate(self._fd, self.bytes_written)
            except OSError:
                self._torn = True
                self.bytes_written += written
            raise OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)} (a write was cut short)")
        self._torn = False
        self.bytes_written += written

    def close(self) -> None:
        if self._fd >= 0:
            self.retry()
            os.close(self._fd)
            self._fd = -1


def read_records(path: Path, offset: int) -> list[tuple[int, Record]]:
    """Complete records after ``offset``, each with the offset just past it.

    A torn last line (a kernel killed mid-write) is left for later; a line that is not JSON
    is skipped so one bad byte never blocks the rest of the journal.
    """
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            data = fh.read()
    except FileNotFoundError:
        return []
    out: list[tuple[int, Record]] = []
    pos = offset
    for line in data.splitlines(keepends=True):
        if not line.endswith(b"\n"):
            break
        pos += len(line)
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            out.append((pos, record))
    return out


@dataclass
class DrainState:
    """How far a journal has been moved into MLflow, and the run ids it created."""

    offset: int = 0
    experiment_id: str | None = None
    session_run_id: str | None = None
    #: the session run belongs to someone else (a pipeline step): never close it
    session_run_external: bool = False
    session_ended: bool = False
    last_time: int = 0
    #: the session_start record, so any drainer can finish a journal another one started
    session: dict[str, Any] = field(default_factory=dict)
    #: record id -> run id for records whose run exists but is not finished
    pending: dict[str, str] = field(default_factory=dict)
    #: record id -> run id of every ``run`` record written, so a child finds its parent
    runs: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> DrainState:
        try:
            data = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            return cls()
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self)))
        os.replace(tmp, path)


class FileLock:
    """An advisory ``flock`` held until ``release`` (or the process dies)."""

    def __init__(self, path: Path):
        self.path = path
        self._fh: TextIO | None = None

    def acquire(self, timeout: float | None = 0.0) -> bool:
        """Take the lock; wait up to ``timeout`` seconds (None: forever)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+")  # noqa: SIM115 - held open for the lock's lifetime
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._fh = fh
                return True
            except BlockingIOError:
                if deadline is not None and time.monotonic() >= deadline:
                    fh.close()
                    return False
                time.sleep(0.05)

    def release(self) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None

    @property
    def held(self) -> bool:
        return self._fh is not None


def is_locked(path: Path) -> bool:
    """Whether another process holds the lock at ``path`` right now."""
    probe = FileLock(path)
    if probe.acquire(timeout=0):
        probe.release()
        return False
    return True


def journals(journal_dir: Path) -> Iterator[JournalPaths]:
    """Every session journal under ``journal_dir``, oldest first."""
    if not journal_dir.is_dir():
        return iter(())
    files = sorted(journal_dir.glob("*.jsonl"), key=lambda p: p.stat().st_mtime)
    return (JournalPaths(p) for p in files)
