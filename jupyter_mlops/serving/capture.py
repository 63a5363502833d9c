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
from pathlib import Path
from typing import Any

import numpy as np

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


def _matrix(column: Any) -> np.ndarray:
    """A ``list<fixed_size_list<t, n>>`` column as an (instances, n) array."""
    import pyarrow.compute as pc

    instances = pc.list_flatten(column)
    width = instances.type.list_size
    values = pc.list_flatten(instances).to_numpy()
    return np.asarray(values).reshape(-1, width)


def _segment_frame(path: Path, since: float | None) -> Any:
    """One segment's requests at or after ``since``, one row per instance (or None)."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    batches = list(stream_batches(path))
    if not batches:
        return None
    table = pa.Table.from_batches(batches)
    if since is not None:
        table = table.filter(pc.greater_equal(table.column("time"), since))
    names = table.schema.names
    inputs = [n for n in names if n.startswith("in.")]
    outputs = [n for n in names if n.startswith("out.")]
    if table.num_rows == 0 or not inputs:
        return None
    first = table.column(inputs[0])
    lengths = pc.list_value_length(first).to_numpy()
    columns: dict[str, Any] = {
        key: np.repeat(table.column(key).to_numpy(), lengths)
        for key in ("time", "version", "protocol", "latency_ms")
    }
    features = _matrix(first)
    columns.update({f"f{j}": features[:, j] for j in range(features.shape[1])})
    if outputs:
        predicted = _matrix(table.column(outputs[0]))
        columns.update({f"out{j}": predicted[:, j] for j in range(predicted.shape[1])})
    ids = table.column("request_id").to_pylist() if "request_id" in names else [None] * len(lengths)
    columns["request_id"] = row_ids(ids, lengths)
    return pd.DataFrame(columns)


def capture_frame(directory: Path, since: float | None = None) -> Any:
    """Captured requests at or after ``since`` as a DataFrame, one row per instance, oldest
    first. ``attrs["dropped"]`` counts requests not kept, by reason; ``attrs["captured"]``
    the requests written to segments (what the byte cap or age removed is in ``dropped``)."""
    import pandas as pd

    frames = [
        frame
        for path in sorted(directory.glob(SEGMENT_GLOB))
        if (frame := _segment_frame(path, since)) is not None
    ]
    legacy = _legacy_frame(directory, since) if any(directory.glob(LEGACY_GLOB)) else None
    if legacy is not None and not legacy.empty:
        frames.insert(0, legacy)
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if not frame.empty:
        frame = frame.sort_values("time", kind="stable", ignore_index=True)
        frame["time"] = pd.to_datetime(frame["time"], unit="s", utc=True)
    stats = read_stats(directory)
    frame.attrs["dropped"] = stats["dropped"]
    frame.attrs["captured"] = stats["written"]
    return frame


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
