"""Explanations and fairness on the chain's runs, found by name, whatever logged them.

An evaluation run (``jupyter_mlops.evaluate``) is shown whole. Elsewhere a metric or an
artifact belongs here when its name speaks of attributions (SHAP, captum,
importances), fairness or slices, or evaluation outputs (confusion matrix, curves). Images
are embedded as data URIs, small JSON and text inline, a plotly figure as its JSON (the
HTML report draws it); anything else is named with its size.
"""

from __future__ import annotations

import base64
import json
import re
import tempfile
from pathlib import Path
from typing import Any

from .facts import AnalysisFacts, Artifact

_METRIC = re.compile(
    r"fair|demographic|equali[sz]ed|odds|disparit|slice|worst|shap|attribution|importance",
    re.IGNORECASE,
)
_ARTIFACT = re.compile(
    r"shap|attribution|explain|importance|captum|fair|slice|disparit|confusion|curve|eval",
    re.IGNORECASE,
)
_IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
                ".svg": "image/svg+xml"}  # fmt: skip
_TEXT_TYPES = (".json", ".csv", ".txt", ".md", ".tsv")
_MAX_IMAGE = 2_000_000
_MAX_FIGURE = 1_500_000
_MAX_TEXT = 200_000
_SHOWN_TEXT = 20_000
_MAX_DEPTH = 3


def _walk(client: Any, run_id: str, path: str | None = None, depth: int = 0) -> list[Any]:
    out = []
    for item in client.list_artifacts(run_id, path):
        if item.is_dir:
            if depth < _MAX_DEPTH and Path(item.path).name != "model":
                out.extend(_walk(client, run_id, item.path, depth + 1))
        else:
            out.append(item)
    return out


def _is_figure(data: Any) -> bool:
    return isinstance(data, dict) and isinstance(data.get("data"), list) and "layout" in data


def _artifact(client: Any, run_id: str, item: Any, notes: list[str]) -> Artifact:
    suffix = Path(item.path).suffix.lower()
    size = item.file_size
    limit = _MAX_IMAGE if suffix in _IMAGE_TYPES else _MAX_TEXT
    if suffix == ".json":
        limit = _MAX_FIGURE
    if (suffix not in _IMAGE_TYPES and suffix not in _TEXT_TYPES) or (size or 0) > limit:
        return Artifact(run_id, item.path, "listed", size=size)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            raw = Path(client.download_artifacts(run_id, item.path, tmp)).read_bytes()
    except Exception as err:
        notes.append(f"artifact {item.path} of run {run_id} could not be read: {err}")
        return Artifact(run_id, item.path, "listed", size=size)
    if suffix in _IMAGE_TYPES:
        encoded = base64.b64encode(raw).decode("ascii")
        return Artifact(
            run_id, item.path, "image", f"data:{_IMAGE_TYPES[suffix]};base64,{encoded}", size
        )
    text = raw.decode("utf-8", errors="replace")
    if suffix == ".json":
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if _is_figure(data):
            return Artifact(run_id, item.path, "figure", text, size)
        if data is not None:
            text = json.dumps(data, indent=2, default=str)
    if len(text) > _SHOWN_TEXT:
        text = (
            text[:_SHOWN_TEXT] + f"\n… ({len(text) - _SHOWN_TEXT} more characters in the artifact)"
        )
    return Artifact(run_id, item.path, "text", text, size)


def analysis_of(client: Any, runs: list[Any], notes: list[str]) -> list[AnalysisFacts]:
    """Explanation and fairness metrics and artifacts of ``runs``: one entry per run with any."""
    out = []
    for run in runs:
        run_id = run.info.run_id
        # an evaluation run is all analysis: every metric and artifact of it is shown
        whole = run.data.tags.get("mlops.kind") == "evaluation"
        metrics = {
            k: float(v)
            for k, v in sorted(run.data.metrics.items())
            if (whole or _METRIC.search(k)) and not k.startswith("mlops.")
        }
        try:
            items = [a for a in _walk(client, run_id) if whole or _ARTIFACT.search(a.path)]
        except Exception as err:
            notes.append(f"artifacts of run {run_id} could not be listed: {err}")
            items = []
        if not metrics and not items:
            continue
        kind = run.data.tags.get("mlops.kind", "run")
        out.append(
            AnalysisFacts(
                run=run_id,
                label=f"{run.info.run_name} ({kind} run)" if run.info.run_name else f"{kind} run",
                metrics=metrics,
                artifacts=[_artifact(client, run_id, a, notes) for a in items],
            )
        )
    return out
