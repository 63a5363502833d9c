"""One flush of captured requests as an Arrow record batch: a row per request, a column per
input and output (``list<fixed_size_list<dtype, n>>``, one item per instance), strings as
Arrow strings, what is neither a number nor a string as JSON text. A declared context
column is ``ctx.<name>``: ``list<string>``, each instance's value as JSON text (so a
number stays a number and a string a string) or null when the request did not send it."""

from __future__ import annotations

import json
from operator import itemgetter
from typing import Any, cast

import numpy as np

FORMAT = "jupyter-mlops capture 1"

# (time, version, protocol, latency_ms, request_id, inputs, outputs, inputs are table columns,
#  context columns: name -> one value per instance, None where not sent)
Entry = tuple[
    float, str, str, float, "str | None", dict[str, Any], dict[str, Any], bool, dict[str, Any]
]


#: numpy copies arrays of up to this many items without releasing the GIL
_NUMPY_KEEPS_GIL = 500


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


def _strings(values: list[str | None]) -> Any:
    import pyarrow as pa

    if values and None not in values:
        # no nulls and all ASCII (versions, protocols, request ids): built by C calls over
        # the whole list, not by a Python loop per value
        texts = cast("list[str]", values)
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
    """One request per list item, one instance per fixed-size item, values in their dtype."""
    import pyarrow as pa

    # requests of one signature share their number of dimensions
    shaped = [a.reshape(1) for a in arrays] if arrays[0].ndim == 0 else arrays
    instance = shaped[0].shape[1:]
    width = int(np.prod(instance)) if instance else 1
    offsets = np.zeros(len(shaped) + 1, np.int32)
    np.cumsum(np.fromiter(map(len, shaped), np.int64, len(shaped)), out=offsets[1:])
    dtype = shaped[0].dtype
    flat = None
    if not dtype.hasobject and shaped[0].size > _NUMPY_KEEPS_GIL:
        try:
            # one copy with the GIL released once (bytes.join does for large results), where
            # numpy's concatenate releases and takes it back for each large request: each
            # time behind the request thread, up to the 5 ms switch interval
            flat = np.frombuffer(b"".join(map(memoryview, cast("list[Any]", shaped))), dtype)
        except (TypeError, BufferError):
            pass  # an array that is not contiguous
    if flat is None:
        flat = np.concatenate(shaped).reshape(-1)
    meta = {b"shape": json.dumps(list(instance)).encode(), b"dtype": shaped[0].dtype.str.encode()}
    if flat.dtype == object and all(type(v) is str for v in flat.tolist()):
        # a string tensor (a table's text column) as Arrow strings, not JSON text
        items = _strings(flat.tolist())
        meta[b"values"] = b"text"
    else:
        items = _numbers(flat)
    values = pa.FixedSizeListArray.from_arrays(items, width)
    column = pa.ListArray.from_arrays(_numbers(offsets), values)
    return column, meta


def record_batch(entries: list[Entry]) -> Any:
    import pyarrow as pa

    n = len(entries)
    fields = [
        pa.field("time", pa.float64()),
        pa.field("version", pa.string()),
        pa.field("protocol", pa.string()),
        pa.field("latency_ms", pa.float64()),
        pa.field("request_id", pa.string()),
    ]
    # fields taken with C-level map/itemgetter: a flush holds thousands of requests
    columns = [
        _numbers(np.fromiter(map(itemgetter(0), entries), np.float64, n)),
        _strings(list(map(itemgetter(1), entries))),
        _strings(list(map(itemgetter(2), entries))),
        _numbers(np.fromiter(map(itemgetter(3), entries), np.float64, n)),
        _strings(list(map(itemgetter(4), entries))),
    ]
    inputs = list(map(itemgetter(5), entries))
    outputs = list(map(itemgetter(6), entries))
    for kind, tensors in (("in", inputs), ("out", outputs)):
        for name in tensors[0]:
            column, meta = _tensor_column(list(map(itemgetter(name), tensors)))
            if entries[0][7]:
                meta[b"column"] = b"1"
            fields.append(pa.field(f"{kind}.{name}", column.type, metadata=meta))
            columns.append(column)
    # an entry of eight fields carries no context columns
    for name in entries[0][8] if len(entries[0]) > 8 else {}:
        fields.append(pa.field(f"ctx.{name}", pa.list_(pa.string()), metadata={b"context": b"1"}))
        columns.append(_context_column([e[8][name] for e in entries]))
    schema = pa.schema(fields, metadata={b"format": FORMAT.encode()})
    return pa.RecordBatch.from_arrays(columns, schema=schema)


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
