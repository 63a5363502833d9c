"""One flush of captured requests as an Arrow record batch: a row per request, a column per
input and output (``list<fixed_size_list<dtype, n>>``, one item per instance), strings as
Arrow strings, what is neither a number nor a string as JSON text. A declared context
column is ``ctx.<name>``: ``list<string>``, each instance's value as JSON text (so a
number stays a number and a string a string) or null when the request did not send it."""

from __future__ import annotations

import io
import json
from array import array
from collections.abc import Sequence
from operator import attrgetter
from typing import Any, cast

import numpy as np

FORMAT = "jupyter-mlops capture 1"


# Arrays are built from their buffers: ``pyarrow.array()`` imports pandas on first use
# (0.5 s and tens of MB in a server that never needs it), and copies nothing less.
def _numbers(values: np.ndarray) -> Any:
    import pyarrow as pa

    if values.dtype == np.bool_:
        bits = np.packbits(values, bitorder="little")
        return pa.Array.from_buffers(pa.bool_(), len(values), [None, pa.py_buffer(bits)])
    if values.dtype == object:  # strings or maps of a non-tensor output: kept as JSON text
        return _strings([json.dumps(v, default=str) for v in values.tolist()])
    if not values.dtype.isnative:
        values = values.astype(values.dtype.newbyteorder("="))
    kind = pa.from_numpy_dtype(values.dtype)
    buffer = pa.py_buffer(np.ascontiguousarray(values))
    return pa.Array.from_buffers(kind, len(values), [None, buffer])


def _strings(values: Sequence[str | None]) -> Any:
    import pyarrow as pa

    if values and None not in values:
        # no nulls and all ASCII (versions, protocols, request ids): built by C calls over
        # the whole list, not by a Python loop per value
        texts = cast("Sequence[str]", values)
        text = "".join(texts)
        if text.isascii():
            offsets = np.zeros(len(values) + 1, np.int32)
            np.cumsum(np.fromiter(map(len, texts), np.int32, len(values)), out=offsets[1:])
            data = pa.py_buffer(text.encode("ascii"))
            return pa.Array.from_buffers(
                pa.string(), len(values), [None, pa.py_buffer(offsets), data]
            )
    encoded = [b"" if v is None else v.encode() for v in values]
    offsets = np.zeros(len(values) + 1, np.int32)
    np.cumsum([len(e) for e in encoded], out=offsets[1:])
    present = np.fromiter((v is not None for v in values), np.bool_, len(values))
    nulls = len(values) - int(present.sum())
    validity = pa.py_buffer(np.packbits(present, bitorder="little")) if nulls else None
    buffers = [validity, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))]
    return pa.Array.from_buffers(pa.string(), len(values), buffers, null_count=nulls)


def _tensor_column(arrays: list[np.ndarray]) -> tuple[Any, dict[bytes, bytes]]:
    """A column of arrays kept as they came (strings, objects, dates): one request per list
    item, one instance per fixed-size item."""
    # requests of one signature share their number of dimensions
    shaped = [a.reshape(1) for a in arrays] if arrays[0].ndim == 0 else arrays
    counts = np.fromiter(map(len, shaped), np.int64, len(shaped))
    flat = np.concatenate(shaped).reshape(-1)
    if flat.dtype == object and all(type(v) is str for v in flat.tolist()):
        # a string tensor (a table's text column) as Arrow strings, not JSON text
        items, extra = _strings(flat.tolist()), {b"values": b"text"}
    else:
        items, extra = _numbers(flat), {}
    return _list_column(items, counts, shaped[0].shape[1:], shaped[0].dtype, extra)


def _list_column(
    items: Any,
    counts: np.ndarray,
    instance: tuple[int, ...],
    dtype: np.dtype,
    extra: dict[bytes, bytes] | None = None,
) -> tuple[Any, dict[bytes, bytes]]:
    """``list<fixed_size_list<...>>`` of ``items`` (every value, flat): ``counts[i]``
    instances of shape ``instance`` in request i. The instance shape and the ``dtype`` they
    came in go in the field's metadata, with ``extra``."""
    import pyarrow as pa

    width = int(np.prod(instance)) if instance else 1
    offsets = np.zeros(len(counts) + 1, np.int32)
    np.cumsum(counts, out=offsets[1:])
    values = pa.FixedSizeListArray.from_arrays(items, width)
    meta = {b"shape": json.dumps(list(instance)).encode(), b"dtype": dtype.str.encode()}
    return pa.ListArray.from_arrays(_numbers(offsets), values), meta | (extra or {})


#: dtype kinds kept as raw bytes while queued: numbers and booleans (objects, strings and
#: dates export buffers too, but not ones that ``_numbers`` can read back)
_RAW_KINDS = frozenset("biufc")


#: ``take`` of a request that is not of the queue's signature, and of one with no room left
OTHER = -1
NO_ROOM = -2
#: (dtype, shape) of an array, in one C call
_DTYPE_AND_SHAPE = attrgetter("dtype", "shape")


class Pending:
    """The queued requests of one signature (names, dtypes, instance shapes), kept column by
    column in C-level buffers until the writer's next flush: a request's tensors are copied
    in (a memcpy) and its arrays let go at once. Holding a dozen fresh objects per request
    until the flush cost the request thread more than the copy; the flush then reads each
    column as one buffer, with no Python work per request. Once written, the same object
    queues the next requests of its signature (``reset``): its buffers keep their memory.
    Growing a buffer of megabytes anew at every flush, by an eighth at a time, copied as it
    grows, into fresh pages, cost the request more than its copy (batch-64 requests in a
    tight loop: about 10 us each, against 3 us into kept buffers)."""

    __slots__ = (
        "_counts", "_fast", "_names", "_raws", "_shapes", "_size", "columns", "context",
        "counts", "latencies", "protocols", "request_ids", "rows", "tensors", "times",
        "versions", "width",
    )  # fmt: skip

    def __init__(
        self,
        inputs: dict[str, np.ndarray],
        outputs: dict[str, np.ndarray],
        columns: bool = False,
        context: dict[str, Any] | None = None,
    ):
        self.rows = 0
        self.times = array("d")
        self.latencies = array("d")
        self.versions: list[str] = []
        self.protocols: list[str] = []
        self.request_ids: list[str | None] = []
        self.tensors = [_Queued("in", n, a) for n, a in inputs.items()]
        self.width = len(self.tensors)  # the inputs among them
        self.tensors += [_Queued("out", n, a) for n, a in outputs.items()]
        #: instances per request of each tensor, request after request
        self.counts = array("q")
        self.columns = columns
        self.context: dict[str, list[Any]] = {name: [] for name in context or {}}
        self._raws = [t.raw for t in self.tensors if t.raw is not None]
        self._names = [t.name for t in self.tensors]
        #: every tensor raw bytes and no context: ``take`` queues requests of this signature
        self._fast = not self.context and len(self._raws) == len(self.tensors)
        # the last request ``take`` queued: (dtype, shape) of its tensors, their instance
        # counts and bytes; a request of the same shapes (most are) needs no other check
        self._shapes: list[tuple[np.dtype, tuple[int, ...]]] | None = None
        self._counts = array("q")
        self._size = 0

    def take(
        self,
        time: float,
        version: str,
        protocol: str,
        latency_s: float,
        request_id: str | None,
        inputs: dict[str, np.ndarray],
        outputs: dict[str, np.ndarray],
        columns: bool,
        room: int,
    ) -> int:
        """Queue a request with no context if it is of this signature and its tensors fit in
        ``room`` bytes: its bytes. Else queue nothing: ``OTHER`` (another signature, or a
        request ``add`` queues) or ``NO_ROOM``. The request path of almost every request:
        a few C calls, no Python loop over its tensors' properties."""
        if not self._fast or columns is not self.columns:
            return OTHER
        arrays = [*inputs.values(), *outputs.values()]
        shapes = list(map(_DTYPE_AND_SHAPE, arrays))
        if (shapes != self._shapes or [*inputs, *outputs] != self._names) and (
            len(inputs) != self.width or not self._learn(inputs, outputs, shapes)
        ):
            return OTHER
        if self._size > room:
            return NO_ROOM
        raws = self._raws
        i = 0
        try:
            for i, a in enumerate(arrays):
                raws[i].write(a)  # type: ignore[arg-type]  # ndarray exports its buffer
        except BaseException as err:
            self._take_back(i, arrays)
            if not isinstance(err, ValueError):
                raise
            # a view that is not contiguous: the copy that handles any array
            self.add(time, version, protocol, latency_s, request_id, inputs, outputs)
            return self._size
        self._row(self._counts, time, version, protocol, latency_s, request_id)
        return self._size

    def _row(
        self,
        counts: array[int],
        time: float,
        version: str,
        protocol: str,
        latency_s: float,
        request_id: str | None,
    ) -> None:
        """The rest of a request whose tensors were copied in."""
        self.counts.extend(counts)
        self.rows += 1
        self.times.append(time)
        self.latencies.append(latency_s)
        self.versions.append(version)
        self.protocols.append(protocol)
        self.request_ids.append(request_id)

    def _learn(
        self,
        inputs: dict[str, np.ndarray],
        outputs: dict[str, np.ndarray],
        shapes: list[tuple[np.dtype, tuple[int, ...]]],
    ) -> bool:
        """Whether tensors of these names and ``shapes`` are of this signature (names,
        dtypes, dimensions, instance shapes); if so, they become the ones ``take`` expects."""
        if len(shapes) != len(self.tensors):
            return False
        for t, name, (dtype, shape) in zip(self.tensors, [*inputs, *outputs], shapes, strict=True):
            if (
                name != t.name
                or dtype != t.dtype
                or len(shape) != t.ndim
                or shape[1:] != t.instance
            ):
                return False
        self._shapes = shapes
        self._counts = array("q", [shape[0] if shape else 1 for _, shape in shapes])
        self._size = sum(
            t.dtype.itemsize * int(np.prod(s))
            for t, (_, s) in zip(self.tensors, shapes, strict=True)
        )
        return True

    def add(
        self,
        time: float,
        version: str,
        protocol: str,
        latency_s: float,
        request_id: str | None,
        inputs: dict[str, np.ndarray],
        outputs: dict[str, np.ndarray],
        context: dict[str, Any] | None = None,
    ) -> None:
        """Queue one request of this signature, any request ``take`` does not. A request
        that cannot be copied leaves the queue as it was, and raises."""
        arrays = [*inputs.values(), *outputs.values()]
        counts = array("q")
        copied = 0
        try:
            for t, a in zip(self.tensors, arrays, strict=True):
                counts.append(len(a) if t.ndim else 1)
                raw = t.raw
                if raw is None:
                    t.arrays.append(a)
                else:
                    try:
                        raw.write(a)  # type: ignore[arg-type]
                    except ValueError:  # not contiguous
                        raw.write(np.ascontiguousarray(a))  # type: ignore[arg-type]
                copied += 1
        except BaseException:
            self._take_back(copied, arrays)
            raise
        self._row(counts, time, version, protocol, latency_s, request_id)
        if context:
            for name, values in self.context.items():
                values.append(context[name])

    def _take_back(self, copied: int, arrays: list[np.ndarray]) -> None:
        """Undo the first ``copied`` tensors of a request whose next one failed to copy."""
        for t, a in zip(self.tensors[:copied], arrays, strict=False):
            if t.raw is None:
                t.arrays.pop()
            else:
                t.raw.seek(-a.nbytes, io.SEEK_CUR)

    def reset(self) -> bool:
        """Empty, to queue the next requests of its signature, its buffers rewound: whether
        it can. It cannot while a record batch of it still reads a buffer, nor once a buffer
        grew to four times what it now held: the memory kept follows the traffic down."""
        for raw in self._raws:
            try:
                raw.write(b"")  # refused while a view of the buffer is alive
            except BufferError:
                return False
            used = raw.tell()
            if used < raw.seek(0, io.SEEK_END) // 4:
                return False
        for raw in self._raws:
            raw.seek(0)
        for t in self.tensors:
            t.arrays = []
        self.rows = 0
        self.times, self.latencies, self.counts = array("d"), array("d"), array("q")
        self.versions, self.protocols, self.request_ids = [], [], []
        self.context = {name: [] for name in self.context}
        return True

    def record_batch(self) -> Any:
        """One row per queued request, in the order they came."""
        import pyarrow as pa

        fields = [
            pa.field("time", pa.float64()),
            pa.field("version", pa.string()),
            pa.field("protocol", pa.string()),
            pa.field("latency_ms", pa.float64()),
            pa.field("request_id", pa.string()),
        ]
        columns = [
            _numbers(np.frombuffer(self.times, np.float64)),
            _strings(self.versions),
            _strings(self.protocols),
            _numbers(np.frombuffer(self.latencies, np.float64) * 1000),
            _strings(self.request_ids),
        ]
        counts = np.frombuffer(self.counts, np.int64).reshape(self.rows, len(self.tensors))
        for j, tensor in enumerate(self.tensors):
            column, meta = tensor.column(counts[:, j])
            if self.columns:
                meta[b"column"] = b"1"
            fields.append(pa.field(f"{tensor.kind}.{tensor.name}", column.type, metadata=meta))
            columns.append(column)
        for name, requests in self.context.items():
            fields.append(
                pa.field(f"ctx.{name}", pa.list_(pa.string()), metadata={b"context": b"1"})
            )
            columns.append(_context_column(requests))
        schema = pa.schema(fields, metadata={b"format": FORMAT.encode()})
        return pa.RecordBatch.from_arrays(columns, schema=schema)


class _Queued:
    """One input or output of queued requests: numbers as their raw bytes, any other dtype
    as the arrays themselves."""

    __slots__ = ("arrays", "dtype", "instance", "kind", "name", "ndim", "raw")

    def __init__(self, kind: str, name: str, first: np.ndarray):
        self.kind, self.name = kind, name
        self.dtype = first.dtype
        self.ndim = first.ndim
        self.instance = first.shape[1:]
        #: the queued bytes are the buffer's up to its position (past it: an earlier flush's)
        self.raw = io.BytesIO() if first.dtype.kind in _RAW_KINDS else None
        self.arrays: list[np.ndarray] = []

    def column(self, counts: np.ndarray) -> tuple[Any, dict[bytes, bytes]]:
        """The column of the queued requests, of ``counts[i]`` instances in request i."""
        if self.raw is None:
            return _tensor_column(self.arrays)
        count = self.raw.tell() // self.dtype.itemsize
        values = _numbers(np.frombuffer(self.raw.getbuffer(), self.dtype, count))
        return _list_column(values, counts, self.instance, self.dtype)


def _context_column(requests: list[np.ndarray]) -> Any:
    """One list per request, one JSON text (or null) per instance."""
    import pyarrow as pa

    offsets = np.zeros(len(requests) + 1, np.int32)
    np.cumsum([len(r) for r in requests], out=offsets[1:])
    texts = [None if v is None else json.dumps(v) for r in requests for v in r.tolist()]
    return pa.ListArray.from_arrays(_numbers(offsets), _strings(texts))


def context_columns(table: Any, lengths: np.ndarray) -> dict[str, np.ndarray]:
    """The ``ctx.<name>`` columns of a capture table, one value per instance, as written
    (str, int, float, bool or None); a request of a column with fewer values than
    instances (none: a request before the column was declared) is padded with None."""
    import pyarrow.compute as pc

    out = {}
    for field in table.schema:
        if not field.name.startswith("ctx."):
            continue
        column = table.column(field.name)
        sizes = pc.list_value_length(column).fill_null(0).to_numpy()
        texts = pc.list_flatten(column).to_pylist()
        values: list[Any] = []
        start = 0
        for size, want in zip(sizes.tolist(), lengths.tolist(), strict=True):
            part = [None if t is None else json.loads(t) for t in texts[start : start + size]]
            values.extend(part[:want] + [None] * (want - len(part)))
            start += size
        array = np.empty(len(values), dtype=object)
        array[:] = values
        out[field.name[4:]] = array
    return out
