"""From one captured prediction back to the deployment and the version that answered it."""

from __future__ import annotations

from typing import Any

from ..config import Settings
from ..exceptions import NotFoundError, UsageError
from .facts import RequestFacts


def _value(v: Any) -> Any:
    item = getattr(v, "item", None)
    return item() if callable(item) else v


def _matching(frame: Any, request_id: str) -> Any:
    ids = frame["request_id"]
    hit = frame[ids == request_id]
    if hit.empty:  # the id of a whole batch: its rows are <id>-0 .. <id>-<n-1>
        hit = frame[ids.astype("string").str.startswith(f"{request_id}-", na=False)]
    return hit


def _moment(value: Any) -> str:
    try:
        return str(value.isoformat(timespec="milliseconds")).replace("+00:00", "Z")
    except (AttributeError, TypeError, ValueError):
        return str(value)


def _values(hit: Any, columns: list[str]) -> dict[str, Any]:
    """A single row's values, or each column's list of values for the rows of a batch."""
    if len(hit) == 1:
        return {c: _value(hit.iloc[0][c]) for c in columns}
    return {c: [_value(v) for v in hit[c]] for c in columns}


def _label(directory: Any, ids: list[str]) -> Any:
    from ..serving.label_store import has_labels, read_labels

    if not has_labels(directory):
        return None
    labels = read_labels(directory)
    found = labels[labels["request_id"].isin(ids)]
    if found.empty:
        return None
    values = [_value(v) for v in found["label"]]
    return values[0] if len(values) == 1 else values


def find_request(settings: Settings, request_id: str) -> tuple[str, RequestFacts]:
    """(model name, the request) for a request id captured by any deployment of the project."""
    from ..serving.capture import capture_frame, has_capture, input_columns, output_columns
    from ..serving.manager import get_deployment

    request_id = request_id.strip()
    if not request_id:
        raise UsageError("--request needs a request id (the x-request-id a server answered)")
    root = settings.state_dir / "inference"
    searched = []
    for directory in sorted(root.iterdir()) if root.is_dir() else []:
        if not has_capture(directory):
            continue
        searched.append(directory.name)
        frame = capture_frame(directory)
        if frame.empty or "request_id" not in frame.columns:
            continue
        hit = _matching(frame, request_id)
        if hit.empty:
            continue
        deployment = get_deployment(directory.name, settings=settings)
        first = hit.iloc[0]
        inputs, outputs = input_columns(frame), output_columns(frame)

        latency = first.get("latency_ms")
        return deployment.model, RequestFacts(
            request_id=request_id,
            deployment=directory.name,
            time=_moment(first["time"]),
            version=str(first["version"]),
            protocol=str(first.get("protocol", "")),
            latency_ms=None if latency is None else float(latency),
            inputs=_values(hit, inputs),
            outputs=_values(hit, outputs),
            rows=len(hit),
            label=_label(directory, [str(i) for i in hit["request_id"]]),
        )
    where = ", ".join(searched) if searched else "no deployment has captured traffic"
    raise NotFoundError(f"no captured request with id {request_id!r} (searched: {where})")
