"""Ground truth for captured predictions: labels stored beside a deployment's capture.

Labels arrive later than the predictions they judge, from the model server's ``/feedback``,
``log_labels()`` or ``jupyter mlops labels``, all of which land here. They are appended to
``.mlops/inference/<deployment>/labels.jsonl`` (0600), one ``{"id", "label", "t"}`` per line,
under an exclusive lock, so the server and a notebook can write at once. Nothing is kept in
a server's memory: a stopped deployment loses no label.

Labels are joined with the capture when it is read, not when they are written: a label for
a request still in the server's capture queue is kept (counted ``unknown`` now) and joins
once the request is on disk. A second label for the same id replaces the first (last one
wins) and is counted as a correction: ground truth gets corrected, and the newest word on
it is the one to judge the model by.
"""

from __future__ import annotations

import fcntl
import json
import math
import numbers
import os
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .capture_store import SEGMENT_GLOB, stream_batches
from .config_file import open_private, private_dir
from .request_ids import _VALID, RULE, row_ids

LABELS_FILE = "labels.jsonl"
#: problems named in a result; the rest are only counted
MAX_PROBLEMS = 5

#: (path, size, mtime_ns) -> the ids of that segment: a server answering many /feedback
#: calls reads each closed segment once
_ID_CACHE: dict[tuple[str, int, int], frozenset[str]] = {}


@dataclass
class LabelResult:
    """What became of a batch of labels.

    ``stored`` were written; ``unknown`` of them name no captured request yet (kept: the
    request may still be on its way to disk); ``corrections`` replace an earlier label of
    the same id; ``duplicates`` repeat an id within this batch (its last label is kept);
    ``invalid`` were refused (an id or label of the wrong type), the first few named in
    ``problems``.
    """

    deployment: str
    received: int = 0
    stored: int = 0
    unknown: int = 0
    duplicates: int = 0
    corrections: int = 0
    invalid: int = 0
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        line = f"{self.deployment}: {self.stored} of {self.received} labels stored"
        extra = [
            f"{n} {what}"
            for n, what in (
                (self.unknown, "for requests not captured (yet)"),
                (self.corrections, "corrected an earlier label"),
                (self.duplicates, "duplicated an id in this batch (last kept)"),
                (self.invalid, "refused"),
            )
            if n
        ]
        lines = [line + (f" ({'; '.join(extra)})" if extra else "")]
        lines.extend(f"  {p}" for p in self.problems)
        return "\n".join(lines)


def _clean_id(value: Any) -> str | None:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = str(int(value))  # a CSV reader's guess at an id made of digits
    if isinstance(value, str) and _VALID.fullmatch(value):
        return value
    return None


def _clean_label(value: Any) -> tuple[Any, str | None]:
    """(label, its kind ``number`` / ``text``) or (None, why it is refused)."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()  # a numpy scalar
        except (TypeError, ValueError):
            pass
    if isinstance(value, bool):
        return int(value), "number"
    if isinstance(value, numbers.Integral):
        return int(value), "number"
    if isinstance(value, numbers.Real):
        number = float(value)
        if not math.isfinite(number):
            return None, f"label {value!r} is not a finite number"
        return (int(number) if number.is_integer() else number), "number"
    if isinstance(value, str):
        if not value.strip():
            return None, "label is empty text"
        return value, "text"
    return None, f"label {value!r} is a {type(value).__name__}, not a number or text"


def _stored_kind(labels: dict[str, Any]) -> str | None:
    for label in labels.values():
        return "text" if isinstance(label, str) else "number"
    return None


def store_labels(directory: Path, deployment: str, pairs: Iterable[tuple[Any, Any]]) -> LabelResult:
    """Validate ``(request id, label)`` pairs and append the good ones; never raises on a
    bad pair (it is counted in the result)."""
    result = LabelResult(deployment)
    batch: dict[str, Any] = {}
    refused: list[str] = []
    kinds: dict[str, str] = {}
    for rid, label in pairs:
        result.received += 1
        clean = _clean_id(rid)
        if clean is None:
            refused.append(f"request id {rid!r}: {RULE}")
            continue
        value, kind = _clean_label(label)
        if value is None:
            refused.append(f"{clean}: {kind}")
            continue
        if clean in batch:
            result.duplicates += 1
        batch[clean] = value
        kinds[clean] = str(kind)
    private_dir(directory)
    path = directory / LABELS_FILE
    with open_private(path, "ab") as fh:
        # one writer at a time: the kind check and the correction count read what is stored
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            existing = _read(path)
            kind = _stored_kind(existing) or next(iter(kinds.values()), None)
            for rid in [r for r in batch if kinds[r] != kind]:
                refused.append(
                    f"{rid}: label {batch.pop(rid)!r} is {kinds[rid]}; "
                    f"this deployment's labels are {kind}s"
                )
            now = time.time()
            lines = "".join(
                json.dumps({"id": rid, "label": value, "t": now}) + "\n"
                for rid, value in batch.items()
            )
            fh.write(lines.encode())
            fh.flush()
            os.fsync(fh.fileno())
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    result.stored = len(batch)
    result.corrections = sum(rid in existing for rid in batch)
    if batch:
        known = captured_ids(directory)
        result.unknown = sum(rid not in known for rid in batch)
    result.invalid = len(refused)
    result.problems = refused[:MAX_PROBLEMS]
    if len(refused) > MAX_PROBLEMS:
        result.problems.append(f"... and {len(refused) - MAX_PROBLEMS} more")
    return result


def _read(path: Path) -> dict[str, Any]:
    """Request id -> its newest label (lines are in the order they were written)."""
    out: dict[str, Any] = {}
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    entry = json.loads(line)
                    out[entry["id"]] = entry["label"]
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut short by a crash mid-write
    except FileNotFoundError:
        pass
    return out


def read_labels(directory: Path) -> Any:
    """The labels of a deployment as a DataFrame (``request_id``, ``label``), one row per id,
    its newest label (numbers as floats)."""
    import pandas as pd

    path = directory / LABELS_FILE
    frame = _read_arrow(path)
    if frame is None:
        labels = _read(path)
        frame = pd.DataFrame({"request_id": list(labels), "label": list(labels.values())})
    return frame.drop_duplicates("request_id", keep="last", ignore_index=True)


def _read_arrow(path: Path) -> Any:
    """The file through Arrow's JSON reader (50k labels in milliseconds, where one
    ``json.loads`` a line takes a second), or None when it cannot (a line cut short)."""
    import pyarrow as pa
    import pyarrow.json as pj

    try:
        with open(path, encoding="utf-8") as fh:
            first = json.loads(fh.readline())
    except (OSError, ValueError):
        return None
    # one kind per deployment (store_labels enforces it): its type is known from line one
    kind = pa.string() if isinstance(first.get("label"), str) else pa.float64()
    schema = pa.schema([("id", pa.string()), ("label", kind), ("t", pa.float64())])
    try:
        table = pj.read_json(path, parse_options=pj.ParseOptions(explicit_schema=schema))
    except (pa.ArrowException, OSError):
        return None
    frame = table.select(["id", "label"]).to_pandas()
    return frame.rename(columns={"id": "request_id"})


def has_labels(directory: Path) -> bool:
    path = directory / LABELS_FILE
    return path.is_file() and path.stat().st_size > 0


def _segment_ids(path: Path) -> frozenset[str]:
    import pyarrow.compute as pc

    ids: list[str | None] = []
    for batch in stream_batches(path):
        names = batch.schema.names
        first = next((n for n in names if n.startswith("in.")), None)
        if "request_id" not in names or first is None:
            continue
        lengths = pc.list_value_length(batch.column(first)).to_numpy()
        ids.extend(row_ids(batch.column("request_id").to_pylist(), lengths))
    return frozenset(i for i in ids if i is not None)


def captured_ids(directory: Path) -> frozenset[str]:
    """Every request id (per row) in a deployment's capture on disk (captures of earlier
    releases had none)."""
    found: set[str] = set()
    for path in sorted(directory.glob(SEGMENT_GLOB)):
        try:
            stat = path.stat()
        except OSError:
            continue
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        ids = _ID_CACHE.get(key)
        if ids is None:
            ids = _segment_ids(path)
            if len(_ID_CACHE) > 256:
                _ID_CACHE.clear()
            _ID_CACHE[key] = ids
        found.update(ids)
    return frozenset(found)


FEEDBACK_SHAPES = (
    'send {"request_id": ID, "label": LABEL}, a list of those, or '
    '{"labels": [{"request_id": ID, "label": LABEL}, ...]}'
)


def feedback_pairs(raw: bytes) -> list[tuple[Any, Any]]:
    """The ``(request id, label)`` pairs of a ``POST /feedback`` body; a 400 for a body of
    another shape (a pair with a bad id or label is counted later, not refused here)."""
    from .model import RequestError

    try:
        body = json.loads(raw)
    except ValueError as err:
        raise RequestError(400, f"the body is not JSON ({err}); {FEEDBACK_SHAPES}") from None
    if isinstance(body, dict) and "labels" in body:
        body = body["labels"]
    items = body if isinstance(body, list) else [body]
    pairs = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or "request_id" not in item or "label" not in item:
            raise RequestError(400, f"item {i} has no request_id and label; {FEEDBACK_SHAPES}")
        pairs.append((item["request_id"], item["label"]))
    return pairs
