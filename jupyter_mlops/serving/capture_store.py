"""Captured requests as Arrow IPC stream segments, written off the request path.

The request handler copies the request's tensors into the queued columns of its signature
(``Pending``: raw bytes per column, no object kept per request), bounded in bytes; a writer
thread turns what queued into Arrow record batches twice a second and appends them to the
open segment
``.mlops/inference/<deployment>/capture-<UTC start>-<pid>.arrows``. A row is one request:
``time`` (epoch s), ``version``, ``protocol``, ``latency_ms``, ``request_id`` and, per input
and output, a column ``in.<name>`` / ``out.<name>`` of type
``list<fixed_size_list<dtype, n>>`` holding the tensor in its own dtype (one list item per
instance; the instance's shape is in the field's metadata), and per declared context column
a column ``ctx.<name>`` (``list<string>``, one JSON value or null per instance).

An IPC stream is readable up to its last complete message, so a segment being written, or
left by a crashed server, still reads. Under heavy traffic a segment is written with
``O_DIRECT``: copying a large flush into the page cache cost the writer more CPU than
building and serializing it. Every message of such a segment is padded to whole blocks
inside its metadata (whose length covers the padding), so any Arrow reader reads it as it
is.
Segments close past ``segment_bytes`` or ``segment_age``; the oldest go once the
deployment's capture passes ``max_bytes`` or ``max_age``. Nothing is dropped silently:
requests not written (sampling, full queue, full disk, write errors) and requests removed
(byte cap, age) are counted by reason, for ``/metrics`` and in ``capture-stats.json`` for
``inference_log()``.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import json
import mmap
import os
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import CaptureSettings, capture_settings
from .capture_arrow import NO_ROOM, OTHER, Pending
from .config_file import FILE_MODE, private_dir

SEGMENT_GLOB = "capture-*.arrows"
STATS_FILE = "capture-stats.json"
#: Why a captured request is not on disk: not sampled, the in-memory queue was full, removed
#: by the byte cap or the age limit, the disk was full, another write error, answered while
#: the deployment's capture was paused.
REASONS = (
    "sampled", "queue_full", "max_bytes", "max_age", "disk_full", "write_error", "paused"
)  # fmt: skip


#: Writes of a segment opened with O_DIRECT start and end on this boundary (the page size,
#: a multiple of every disk's logical block).
BLOCK = mmap.PAGESIZE
#: A flush of at least this many bytes opens its segment with O_DIRECT; one below
#: ``DIRECT_UNTIL`` closes such a segment again, so quiet traffic does not pay a padded block
#: per flush.
DIRECT_FROM = 256 * 1024
DIRECT_UNTIL = 32 * 1024

#: The stats file is rewritten in place at this fixed size: on a full disk, overwriting
#: blocks it already has still works where creating a new file would not.
STATS_BYTES = 1024


def read_stats(directory: Path) -> dict[str, Any]:
    """What the capture of a deployment wrote and dropped so far, over all its server runs."""
    data: dict[str, Any] = {}
    for _ in range(3):  # a read racing an in-place rewrite sees a torn record: read again
        try:
            data = json.loads((directory / STATS_FILE).read_bytes())
            break
        except FileNotFoundError:
            break
        except (OSError, ValueError):
            time.sleep(0.01)
    dropped = data.get("dropped") or {}
    return {
        "written": int(data.get("written", 0)),
        "dropped": {r: int(dropped.get(r, 0)) for r in REASONS},
    }


def stream_batches(path: Path) -> Iterator[Any]:
    """The record batches of one segment, up to its last complete one."""
    import pyarrow as pa

    try:
        source = pa.memory_map(str(path))
    except (OSError, pa.ArrowException):
        return  # evicted between listing and opening
    with source:
        try:
            reader = pa.ipc.open_stream(source)
        except (OSError, pa.ArrowException):
            return  # created, schema not written yet
        while True:
            try:
                yield reader.read_next_batch()
            except StopIteration:
                return
            except (OSError, pa.ArrowException):
                return  # a batch being written, or cut short by a full disk


@dataclass
class _Segment:
    path: Path
    size: int
    #: requests in it; None for a segment of an earlier server run until counted
    rows: int | None
    mtime: float


@dataclass
class _Open:
    """The segment being appended to."""

    fd: int
    signature: tuple[Any, ...]
    segment: _Segment
    opened_at: float
    #: opened with O_DIRECT: every write is padded to whole blocks
    direct: bool = False


def _segment_rows(segment: _Segment) -> int:
    if segment.rows is None:
        segment.rows = sum(b.num_rows for b in stream_batches(segment.path))
    return segment.rows


def _signature(
    inputs: dict[str, np.ndarray],
    outputs: dict[str, np.ndarray],
    columns: bool,
    context: dict[str, Any] | None,
) -> tuple[Any, ...]:
    """Requests with equal signatures share one schema: names, dtypes, instance shapes (and
    whether an array has a batch axis at all). Built flat, in one list."""
    key: list[Any] = [columns, len(inputs)]
    for name, a in inputs.items():
        key += (name, a.dtype, a.ndim, a.shape[1:])
    for name, a in outputs.items():
        key += (name, a.dtype, a.ndim, a.shape[1:])
    if context:
        key += context
    return tuple(key)


class CaptureWriter:
    """Captures requests of one server process into its deployment's capture directory.

    >>> writer = CaptureWriter(Path(".mlops/inference/prod"), {"max_bytes": "64MB"})
    ... # doctest: +SKIP
    >>> writer.add("3", "mlflow", 0.0002, {"input": x}, {"output": y})  # doctest: +SKIP
    """

    def __init__(
        self,
        directory: Path,
        settings: CaptureSettings | dict[str, Any] | None = None,
        interval: float = 0.5,
    ):
        if not isinstance(settings, CaptureSettings):
            settings = capture_settings(settings, str(directory / "deployment capture"))
        self.settings = settings
        self.directory = private_dir(directory)
        self._interval = interval
        # rotate often enough that age-based removal never waits for a whole old segment
        self._segment_age = min(
            settings.segment_age, settings.max_age / 2 if settings.max_age else float("inf")
        )
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        #: what queued since the last flush, by signature, in the order first seen
        self._pending: dict[tuple[Any, ...], Pending] = {}
        #: the one of them the last request went to: most requests go where the last one did
        self._last: Pending | None = None
        #: the ones of the last flush, written and emptied, for the next requests of their
        #: signatures: their buffers keep the memory they grew to (see ``Pending.reset``)
        self._spare: dict[tuple[Any, ...], Pending] = {}
        #: bytes the queue may still take; past half full, the writer is woken at once
        self._room = settings.queue_bytes
        self._wake_below = settings.queue_bytes // 2
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._rate = settings.sample_rate
        self._random = random.Random()
        #: this process's counts (for /metrics); the stats file holds the totals of every run
        self.written = 0
        self.dropped = dict.fromkeys(REASONS, 0)
        self._saved = read_stats(self.directory)
        self._last_saved: dict[str, Any] = {"written": 0, **self.dropped}
        self._stats_fd: int | None = None
        # made now, while the disk has room: later saves overwrite it in place
        self._save_stats(force=True)
        self._segments = self._scan()
        self._open: _Open | None = None
        #: False once the file system refused O_DIRECT (tmpfs does)
        self._direct_ok = hasattr(os, "O_DIRECT")
        #: page-aligned memory the messages are serialized into, padded in place for O_DIRECT
        self._aligned: memoryview | None = None
        self._thread = threading.Thread(target=self._run, name="capture-writer", daemon=True)
        self._thread.start()

    # -- request path ---------------------------------------------------------------------------
    def add(
        self,
        version: str,
        protocol: str,
        latency_s: float,
        inputs: dict[str, np.ndarray],
        outputs: dict[str, np.ndarray],
        request_id: str | None = None,
        columns: bool = False,
        context: dict[str, np.ndarray] | None = None,
    ) -> None:
        """Queue one answered request: its tensors are copied into its signature's queued
        columns, under a lock. ``columns``: each input is one column of a table (a column
        model), read back under its own name. ``context``: the declared context columns,
        one value per instance (None: not sent), converted to text on the writer's thread."""
        if self._rate < 1.0 and self._random.random() >= self._rate:
            with self._lock:
                self.dropped["sampled"] += 1
            return
        now = time.time()
        with self._lock:
            pending = self._last
            try:
                if pending is None:
                    size = OTHER
                else:
                    size = pending.take(
                        now, version, protocol, latency_s, request_id, inputs, outputs,
                        columns, self._room,
                    )  # fmt: skip
                if size == OTHER:  # another signature than the last request's, or context
                    pending, size = self._pending_for(inputs, outputs, columns, context)
                    if size <= self._room:
                        pending.add(
                            now, version, protocol, latency_s, request_id, inputs, outputs,
                            context,
                        )  # fmt: skip
                    else:
                        size = NO_ROOM
            except Exception:  # a capture fault costs this capture, counted, never a request
                self.dropped["write_error"] += 1
                return
            if size == NO_ROOM:
                self.dropped["queue_full"] += 1
                return
            self._room -= size
            wake = self._room < self._wake_below
        if wake:  # do not wait for the next tick while the queue fills
            self._wake.set()

    def _pending_for(
        self,
        inputs: dict[str, np.ndarray],
        outputs: dict[str, np.ndarray],
        columns: bool,
        context: dict[str, Any] | None,
    ) -> tuple[Pending, int]:
        """The queued requests of the signature of this one (made when it is the first),
        now the last one used; and the request's bytes. Called under the lock."""
        signature = _signature(inputs, outputs, columns, context)
        pending = self._pending.get(signature)
        if pending is None:
            pending = self._spare.pop(signature, None)
            if pending is None:
                pending = Pending(inputs, outputs, columns, context)
            self._pending[signature] = pending
        self._last = pending
        size = 0
        for tensors in (inputs, outputs):
            for a in tensors.values():
                size += a.nbytes
        return pending, size

    def skip(self, reason: str) -> None:
        """Count one answered request not queued (capture paused)."""
        with self._lock:
            self.dropped[reason] += 1

    # -- writer thread ----------------------------------------------------------------------------
    def _run(self) -> None:
        # now, while the server starts, so the first flush does not wait for the import
        import pyarrow.ipc  # noqa: F401

        while not self._stop.is_set():
            self._wake.wait(self._interval)
            self._wake.clear()
            self.flush()
        self.flush()
        self._close_segment()
        self._save_stats()
        if self._stats_fd is not None:
            os.close(self._stats_fd)

    def flush(self) -> None:
        """Write what queued; never raises (a capture fault must not stop the server). One
        flush at a time: the writer's thread flushes, and so may its owner."""
        with self._flushing:
            self._flush()

    def _flush(self) -> None:
        with self._lock:
            queued, self._pending = self._pending, {}
            self._last = None
            self._room = self.settings.queue_bytes
        unwritten = sum(p.rows for p in queued.values())
        spare: dict[tuple[Any, ...], Pending] = {}
        try:
            for signature, requests in queued.items():
                if requests.rows:  # else made for a request then dropped: queue full
                    self._write(signature, requests)
                    unwritten -= requests.rows
                if requests.reset():
                    spare[signature] = requests
            self._expire()
        except Exception:  # a fault here must cost captures, counted, never requests
            self._count("write_error", unwritten)
            self._abandon_segment()
        with self._lock:
            self._spare = spare
        self._save_stats()

    def _count(self, reason: str, n: int) -> None:
        if n > 0:
            with self._lock:
                self.dropped[reason] += n

    def _write(self, signature: tuple[Any, ...], requests: Pending) -> None:
        from pyarrow.ipc import get_record_batch_size

        record = requests.record_batch()
        size = get_record_batch_size(record)
        # pieces of at most half a segment, so one flush never overshoots the cap
        limit = max(self.settings.segment_bytes // 2, 1)
        if size <= limit or record.num_rows == 1:
            self._write_piece(signature, record, size)
            return
        step = -(-record.num_rows // -(-size // limit))
        for start in range(0, record.num_rows, step):
            piece = record.slice(start, step)
            self._write_piece(signature, piece, get_record_batch_size(piece))

    def _write_piece(self, signature: tuple[Any, ...], record: Any, size: int) -> None:
        """Append one record batch of ``size`` bytes serialized to the open segment in one
        system call (no Python file layer calling back per buffer), making room under the
        cap first."""
        rows = record.num_rows
        if size > self.settings.max_bytes // 2:
            self._count("max_bytes", rows)  # a single request larger than the cap allows
            return
        if self._open is not None and (
            self._open.signature != signature
            or self._open.segment.size + size > self.settings.segment_bytes
            or time.time() - self._open.opened_at > self._segment_age
            or (self._open.direct and size < DIRECT_UNTIL)
        ):
            self._close_segment()
        direct = self._open.direct if self._open else self._direct_ok and size >= DIRECT_FROM
        need = size + (-size % BLOCK if direct else 0)
        header = b"" if self._open is not None else record.schema.serialize().to_pybytes()
        end = BLOCK if direct else len(_END)
        self._make_room(need + len(header) + BLOCK + end)
        try:
            opened = self._open or self._open_segment(signature, header, direct)
            segment = opened.segment
            data = _padded(*self._serialized(record, size, -size % BLOCK if opened.direct else 0))
            _write_all(opened.fd, data)
        except OSError as err:
            full = err.errno in (errno.ENOSPC, errno.EDQUOT)
            self._count("disk_full" if full else "write_error", rows)
            self._abandon_segment()
            return
        segment.size += len(data)
        segment.rows = (segment.rows or 0) + rows
        segment.mtime = time.time()
        self.written += rows

    def _make_room(self, need: int) -> None:
        """Remove the oldest closed segments until ``need`` more bytes fit under the cap."""
        while self._segments and self._total() + need > self.settings.max_bytes:
            self._evict(self._segments[0], "max_bytes")

    def _expire(self) -> None:
        if self.settings.max_age is None:
            return
        cutoff = time.time() - self.settings.max_age
        while self._segments and self._segments[0].mtime < cutoff:
            self._evict(self._segments[0], "max_age")

    def _evict(self, segment: _Segment, reason: str) -> None:
        rows = _segment_rows(segment)
        with contextlib.suppress(FileNotFoundError):
            segment.path.unlink()
        self._segments.remove(segment)
        self._count(reason, rows)

    def _total(self) -> int:
        open_size = self._open.segment.size if self._open is not None else 0
        return sum(s.size for s in self._segments) + open_size

    def _open_segment(self, signature: tuple[Any, ...], header: bytes, direct: bool) -> _Open:
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S.%f")
        path = self.directory / f"capture-{stamp}Z-{os.getpid()}.arrows"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND
        fd = os.open(path, flags, FILE_MODE)
        if direct:
            try:  # set after the open: a refusal leaves a buffered file, not a failed one
                _set_direct(fd)
            except OSError:
                self._direct_ok = direct = False
        self._open = _Open(fd, signature, _Segment(path, 0, 0, time.time()), time.time(), direct)
        data = self._block_padded(header) if direct else memoryview(header)
        _write_all(fd, data)
        self._open.segment.size = len(data)
        return self._open

    def _memory(self, size: int) -> memoryview:
        """``size`` bytes of page-aligned memory, the same from flush to flush: fresh pages
        cost the writer a page fault each, more than the copy into them."""
        if self._aligned is None or len(self._aligned) < size:
            held = np.empty(max(size, 1 << 20) + BLOCK, np.uint8)
            start = -held.ctypes.data % BLOCK
            self._aligned = held[start : start + len(held) - BLOCK].data
        return self._aligned[:size]

    def _serialized(self, record: Any, size: int, pad: int) -> tuple[memoryview, int]:
        """The record batch's IPC message, ``size`` bytes, written by Arrow into memory
        ``pad`` bytes past a page boundary, with those bytes before it (see ``_padded``)."""
        import pyarrow as pa

        head = record.schema.serialize().size
        # the stream writer puts the schema first: it ends ``pad`` bytes past a boundary
        lead = (pad - head) % BLOCK
        memory = self._memory(lead + head + size + len(_END))  # the stream writer ends it
        sink = pa.FixedSizeBufferWriter(pa.py_buffer(memory[lead:]))
        with pa.ipc.new_stream(sink, record.schema) as stream:
            stream.write_batch(record)
            written = sink.tell() - head
        if written < size:
            raise ValueError(f"a capture batch of {size} bytes serialized to {written}")
        start = lead + head
        return memory[start - pad : start + size], pad

    def _block_padded(self, message: bytes) -> memoryview:
        """A small IPC message (the schema, the end marker) padded to whole blocks in
        page-aligned memory."""
        pad = -len(message) % BLOCK
        memory = self._memory(pad + len(message))
        memory[pad:] = message
        return _padded(memory, pad)

    def _close_segment(self) -> None:
        if self._open is None:
            return
        fd, segment, direct = self._open.fd, self._open.segment, self._open.direct
        self._open = None
        try:
            end = self._block_padded(_END) if direct else memoryview(_END)
            _write_all(fd, end)
            segment.size += len(end)
        except OSError:
            pass  # a stream without its end marker still reads
        finally:
            os.close(fd)
        self._segments.append(segment)

    def _abandon_segment(self) -> None:
        """After a failed write: keep what reached the disk, start a new segment next time."""
        if self._open is None:
            return
        fd, segment = self._open.fd, self._open.segment
        self._open = None
        with contextlib.suppress(OSError):
            os.close(fd)
        try:
            if not segment.rows:  # nothing readable in it: no empty file per failed flush
                segment.path.unlink()
                return
            segment.size = segment.path.stat().st_size
            self._segments.append(segment)
        except OSError:
            pass

    def _scan(self) -> list[_Segment]:
        """Segments left by earlier server runs, oldest first: they count against the cap."""
        found = []
        for path in sorted(self.directory.glob(SEGMENT_GLOB)):
            try:
                st = path.stat()
            except OSError:
                continue
            found.append(_Segment(path, st.st_size, None, st.st_mtime))
        return found

    def _save_stats(self, force: bool = False) -> None:
        written, dropped = self.snapshot()
        if self._last_saved == {"written": written, **dropped} and not force:
            return
        totals = {
            "written": self._saved["written"] + written,
            "dropped": {r: self._saved["dropped"][r] + dropped[r] for r in REASONS},
        }
        data = json.dumps(totals).encode().ljust(STATS_BYTES)
        try:
            if self._stats_fd is None:
                # the same file from run to run, never replaced: a second process on this
                # directory (a launch timing, a restart) does not orphan this one's copy
                fd = os.open(self.directory / STATS_FILE, os.O_WRONLY | os.O_CREAT, FILE_MODE)
                os.fchmod(fd, FILE_MODE)
                self._stats_fd = fd
            os.pwrite(self._stats_fd, data, 0)
            self._last_saved = {"written": written, **dropped}
        except OSError:
            pass  # counted in memory and on /metrics; saved on a later flush

    def snapshot(self) -> tuple[int, dict[str, int]]:
        """(written, dropped by reason) of this process, for ``/metrics``."""
        with self._lock:
            dropped = dict(self.dropped)
        return self.written, dropped

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10)


#: An IPC stream's end-of-stream marker: continuation token, zero-length metadata.
_END = b"\xff\xff\xff\xff\x00\x00\x00\x00"


def _padded(memory: memoryview, pad: int) -> memoryview:
    """The IPC message (``ff ff ff ff``, metadata length, metadata, body) that follows
    ``pad`` free bytes in ``memory``, grown by them: its start and metadata moved to the
    front, zeros after the metadata, counted in its length, so a reader reads the message
    unchanged, and the body (megabytes) stays where it is. The end-of-stream marker
    (metadata length 0) ends the stream: its zeros follow it."""
    if not pad:
        return memory
    length = int.from_bytes(memory[pad + 4 : pad + 8], "little")
    head = 8 + length
    memory[:head] = memory[pad : pad + head]
    memory[head : head + pad] = bytes(pad)
    if length:
        memory[4:8] = (length + pad).to_bytes(4, "little")
    return memory


def _set_direct(fd: int) -> None:
    import fcntl

    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_DIRECT)


def _write_all(fd: int, data: memoryview) -> None:
    while data:
        data = data[os.write(fd, data) :]


class CaptureMetrics:
    """Prometheus collector: this process's captured and dropped requests, read at scrape time,
    so the request path pays nothing for them."""

    def __init__(self, writer: CaptureWriter):
        self.writer = writer

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily

        written, dropped = self.writer.snapshot()
        family = CounterMetricFamily(
            "mlops_capture_dropped",
            "Requests answered but not kept by capture, by reason",
            labels=["reason"],
        )
        for reason in REASONS:
            family.add_metric([reason], dropped[reason])
        yield family
        yield CounterMetricFamily(
            "mlops_capture_written", "Requests written to the capture", value=written
        )
