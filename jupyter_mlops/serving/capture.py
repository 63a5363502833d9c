"""Reading a deployment's captured requests, in either format it may hold.

- Arrow IPC segments ``capture-*.arrows``, written by :mod:`.capture_store` (the format
  of today: tensors in their own dtype, a retention cap, counted drops).
- JSON lines ``capture-<YYYYMMDD-HH>.jsonl``, one request per line, written by earlier
  releases; still read, never rewritten or removed.

Both read into the same table: one row per instance (a batch of 8 is 8 rows), its
``request_id`` the request's id for a single instance, ``<id>-<i>`` in a batch, and None
for a request captured before requests had ids.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from .capture_arrow import context_columns
from .capture_store import SEGMENT_GLOB, read_stats, stream_batches
from .request_ids import row_ids

LEGACY_GLOB = "capture-*.jsonl"


def has_capture(directory: Path) -> bool:
    """Whether ``directory`` holds captured requests, or counts of dropped ones."""
    if not directory.is_dir():
        return False
    if any(directory.glob(SEGMENT_GLOB)) or any(directory.glob(LEGACY_GLOB)):
        return True
    stats = read_stats(directory)
    return bool(stats["written"] or any(stats["dropped"].values()))


def read_capture(directory: Path, since: float | None = None) -> list[dict[str, Any]]:
    """Requests of the JSON-lines files (oldest first), at or after ``since`` (epoch s)."""
    entries = []
    for path in sorted(directory.glob(LEGACY_GLOB)):
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


def _legacy_frame(directory: Path, since: float | None) -> Any:
    import pandas as pd

    rows = []
    for entry in read_capture(directory, since):
        inputs = list(entry["inputs"].values())
        outputs = list(entry["outputs"].values())
        features = np.asarray(inputs[0]).reshape(len(inputs[0]), -1)
        predicted = np.asarray(outputs[0]).reshape(len(outputs[0]), -1) if outputs else None
        for i, row in enumerate(features):
            record = {
                "time": entry["time"],
                "version": entry["version"],
                "protocol": entry.get("protocol"),
                "latency_ms": entry["latency_ms"],
            }
            record.update({f"f{j}": float(v) for j, v in enumerate(row)})
            if predicted is not None:
                record.update({f"out{j}": float(v) for j, v in enumerate(predicted[i])})
            record["request_id"] = None  # earlier releases gave requests no id
            rows.append(record)
    return pd.DataFrame(rows)


def _matrix(column: Any, field: Any) -> np.ndarray:
    """A ``list<fixed_size_list<t, n>>`` column as an (instances, n) array."""
    import pyarrow.compute as pc

    instances = pc.list_flatten(column)
    width = instances.type.list_size
    values = np.asarray(pc.list_flatten(instances).to_numpy(zero_copy_only=False))
    meta = field.metadata or {}
    if values.dtype == object and meta.get(b"values") != b"text":
        # strings and maps of earlier captures were kept as JSON text
        values = np.array([_json(v) for v in values.tolist()], dtype=object)
    return values.reshape(-1, width)


def _json(text: Any) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return text


def _named(prefix: str, name: str, matrix: np.ndarray) -> dict[str, np.ndarray]:
    """A column model's tensor under its own name (``out.`` before an output's)."""
    if matrix.shape[1] == 1:
        return {f"{prefix}{name}": matrix[:, 0]}
    return {f"{prefix}{name}.{j}": matrix[:, j] for j in range(matrix.shape[1])}


def _segment_frame(
    path: Path, since: float | None
) -> tuple[Any, list[str], list[str], list[str]] | None:
    """One segment's requests at or after ``since``, one row per instance (or None), with
    the names of its input, output and context columns."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    batches = list(stream_batches(path))
    if not batches:
        return None
    table = pa.Table.from_batches(batches)
    if since is not None:
        table = table.filter(pc.greater_equal(table.column("time"), since))
    schema = table.schema
    inputs = [n for n in schema.names if n.startswith("in.")]
    outputs = [n for n in schema.names if n.startswith("out.")]
    if table.num_rows == 0 or not inputs:
        return None
    lengths = pc.list_value_length(table.column(inputs[0])).to_numpy()
    columns: dict[str, Any] = {
        key: np.repeat(table.column(key).to_numpy(), lengths)
        for key in ("time", "version", "protocol", "latency_ms")
    }
    features: dict[str, Any] = {}
    predicted: dict[str, Any] = {}
    if (schema.field(inputs[0]).metadata or {}).get(b"column") == b"1":
        # a column model: every input is a table column, every output goes by its name
        for n in inputs:
            features.update(_named("", n[3:], _matrix(table.column(n), schema.field(n))))
        for n in outputs:
            predicted.update(_named("out.", n[4:], _matrix(table.column(n), schema.field(n))))
    else:  # a tensor model: its (first) input's features f0..fn, first output's out0..
        matrix = _matrix(table.column(inputs[0]), schema.field(inputs[0]))
        features = {f"f{j}": matrix[:, j] for j in range(matrix.shape[1])}
        if outputs:
            matrix = _matrix(table.column(outputs[0]), schema.field(outputs[0]))
            predicted = {f"out{j}": matrix[:, j] for j in range(matrix.shape[1])}
    columns.update(features)
    columns.update(predicted)
    names = schema.names
    ids = table.column("request_id").to_pylist() if "request_id" in names else [None] * len(lengths)
    columns["request_id"] = row_ids(ids, lengths)
    context = context_columns(table, lengths)
    columns.update(context)
    frame = pd.DataFrame(columns)
    for name in context:  # numbers as numbers, where every value of the window is one
        frame[name] = frame[name].infer_objects()
    return frame, list(features), list(predicted), list(context)


def capture_frame(directory: Path, since: float | None = None) -> Any:
    """Captured requests at or after ``since`` as a DataFrame, one row per instance, oldest
    first. ``attrs["inputs"]`` and ``attrs["outputs"]`` name the input and output columns
    (a column model's by their names, strings as strings; a tensor model's ``f0..fn`` and
    ``out0..``); ``attrs["context"]`` the declared context columns the requests carried
    (captured, never fed to the model; None where a request left one out).
    ``attrs["dropped"]`` counts requests not kept, by reason;
    ``attrs["captured"]`` the requests written to segments (what the byte cap or age
    removed is in ``dropped``)."""
    import pandas as pd

    frames = []
    inputs: dict[str, None] = {}
    outputs: dict[str, None] = {}
    context: dict[str, None] = {}
    for path in sorted(directory.glob(SEGMENT_GLOB)):
        found = _segment_frame(path, since)
        if found is not None:
            frames.append(found[0])
            inputs.update(dict.fromkeys(found[1]))
            outputs.update(dict.fromkeys(found[2]))
            context.update(dict.fromkeys(found[3]))
    legacy = _legacy_frame(directory, since) if any(directory.glob(LEGACY_GLOB)) else None
    if legacy is not None and not legacy.empty:
        frames.insert(0, legacy)
        for name in legacy.columns:
            if re.fullmatch(r"f\d+", name):
                inputs[name] = None
            elif re.fullmatch(r"out\d+", name):
                outputs[name] = None
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if not frame.empty:
        frame = frame.sort_values("time", kind="stable", ignore_index=True)
        frame["time"] = pd.to_datetime(frame["time"], unit="s", utc=True)
    stats = read_stats(directory)
    frame.attrs["inputs"] = list(inputs)
    frame.attrs["outputs"] = list(outputs)
    frame.attrs["context"] = list(context)
    frame.attrs["dropped"] = stats["dropped"]
    frame.attrs["captured"] = stats["written"]
    return frame


def input_columns(frame: Any) -> list[str]:
    """The input columns of an ``inference_log()`` frame (its ``attrs``, else ``f0..fn``)."""
    names = frame.attrs.get("inputs")
    if names is None:
        names = [c for c in frame.columns if re.fullmatch(r"f\d+", str(c))]
    return [c for c in names if c in frame.columns]


def context_columns_of(frame: Any) -> list[str]:
    """The context columns of an ``inference_log()`` frame (declared per model, captured
    beside the inputs, never fed to the model)."""
    return [c for c in frame.attrs.get("context") or [] if c in frame.columns]


def output_columns(frame: Any) -> list[str]:
    """The output columns of an ``inference_log()`` frame (its ``attrs``, else ``out0..``)."""
    names = frame.attrs.get("outputs")
    if names is None:
        names = [c for c in frame.columns if re.fullmatch(r"out\d+", str(c))]
    return [c for c in names if c in frame.columns]


def count_since(directory: Path, since: float) -> int:
    """Requests captured at or after ``since``: reads only their times."""
    import pyarrow.compute as pc

    count = 0
    for path in sorted(directory.glob(SEGMENT_GLOB)):
        try:
            if path.stat().st_mtime < since:
                continue  # last written before the window opened
        except OSError:
            continue
        for batch in stream_batches(path):
            count += int(pc.sum(pc.greater_equal(batch.column("time"), since)).as_py() or 0)
    for path in sorted(directory.glob(LEGACY_GLOB)):
        if path.stat().st_mtime < since:
            continue
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    count += json.loads(line).get("time", 0) >= since
                except ValueError:
                    continue
    return count
