"""What the panel's Quality tab shows of a deployment: its newest monitor run's labelled
quality beside the version's own numbers and the policy's thresholds, the worst slice and
the disparities, the confusion matrix, the attribution shift, and why the policy acted.

Reads what ``monitor()`` stored, like ``status``; it never runs a check.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import store
from ..config import Settings
from .monitor import load_policy
from .quality import CLASSIFICATION, REGRESSION
from .status import MonitorRun, latest_monitor_run

#: errors: a rise is the bad direction
_RISE = ("mae", "rmse")
NO_LABELS = (
    "no labelled rows in its newest check: send labels with `jupyter mlops labels "
    "{deployment} FILE.csv` or `log_labels({deployment!r}, ids, labels)`, then run Monitor"
)
NEVER_CHECKED = "never monitored: run Monitor on it (Drift tab) or monitor({deployment!r})"


@dataclass
class QualityLine:
    """One metric of the window against the version's own."""

    metric: str
    window: float
    version: float | None
    #: the policy's threshold on the change (``accuracy_drop``, ``rmse_rise``), if any
    threshold: str | None = None
    breached: bool = False

    @property
    def change(self) -> float | None:
        return None if self.version is None else self.window - self.version


@dataclass
class QualityView:
    deployment: str
    model: str
    version: str = ""
    run_id: str = ""
    labelled_rows: int = 0
    lines: list[QualityLine] = field(default_factory=list)
    #: (name, value, threshold or None, breached) of the worst slices and disparities
    fairness: list[tuple[str, float, str | None, bool]] = field(default_factory=list)
    #: ``{"labels": [...], "values": [[...]]}`` of the window, if a classifier's
    confusion: dict[str, Any] | None = None
    attribution_shift: float | None = None
    reasons: list[str] = field(default_factory=list)
    #: what to do when there is nothing to show yet
    empty: str | None = None


def quality_view(settings: Settings, deployment: str, model: str) -> QualityView:
    """The Quality tab's content for ``deployment`` (serving ``model``)."""
    latest = latest_monitor_run(settings, deployment, model)
    if latest is None:
        return QualityView(deployment, model, empty=NEVER_CHECKED.format(deployment=deployment))
    view = QualityView(
        deployment,
        model,
        latest.version,
        latest.run_id,
        int(latest.quality.get("labelled_rows", 0)),
        attribution_shift=latest.attribution_shift,
        reasons=[r for r in latest.reasons if r != "drift"],
    )
    if not view.labelled_rows:
        view.empty = NO_LABELS.format(deployment=deployment)
        return view
    run = store.client(settings).get_run(latest.run_id)
    view.lines = _lines(settings, latest, run.data.metrics)
    view.fairness = _fairness(settings, latest)
    view.confusion = _confusion(settings, latest.run_id)
    return view


def _lines(settings: Settings, latest: MonitorRun, metrics: dict[str, float]) -> list[QualityLine]:
    thresholds = load_policy(settings).quality.thresholds
    lines = []
    for metric in (*CLASSIFICATION, *REGRESSION):
        if metric not in latest.quality:
            continue
        rise = metric in _RISE
        key = f"{metric}_rise" if rise else f"{metric}_drop"
        bound = thresholds.get(key)
        now, then = latest.quality[metric], metrics.get(f"quality.version.{metric}")
        worse = None if then is None else (now - then if rise else then - now)
        lines.append(
            QualityLine(
                metric,
                now,
                then,
                None if bound is None else f"{key} {bound:g}",
                bound is not None and worse is not None and worse > bound,
            )
        )
    return lines


def _fairness(settings: Settings, latest: MonitorRun) -> list[tuple[str, float, str | None, bool]]:
    policy = load_policy(settings).slices
    found = []
    for name, value in sorted(latest.fairness.items()):
        metric = (
            name.removeprefix("fairness_").removeprefix("slice_min_").removeprefix("slice_max_")
        )
        bound = (policy.fairness if name.startswith("fairness_") else policy.slices).get(metric)
        hit = bound is not None and (
            value > bound if name.startswith(("fairness_", "slice_max_")) else value < bound
        )
        found.append((name, value, None if bound is None else f"{bound:g}", hit))
    return found


def _confusion(settings: Settings, run_id: str) -> dict[str, Any] | None:
    from mlflow.exceptions import MlflowException

    client = store.client(settings)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = client.download_artifacts(run_id, "quality.json", tmp)
            matrix = json.loads(Path(path).read_text()).get("confusion_matrix") or None
    except (MlflowException, OSError, ValueError):
        return None
    return matrix if matrix and matrix.get("values") else None


def confusion_figure(confusion: dict[str, Any], title: str) -> Any:
    """The window's confusion matrix as a heatmap, counts written in the cells."""
    import plotly.graph_objects as go

    labels = [str(x) for x in confusion["labels"]]
    values = confusion["values"]
    fig = go.Figure(
        go.Heatmap(
            z=values,
            x=labels,
            y=labels,
            colorscale="Blues",
            text=values,
            texttemplate="%{text}",
            hovertemplate="true %{y}, predicted %{x}: %{z}<extra></extra>",
        )
    )
    fig.update_layout(
        title=title,
        xaxis={"title": "predicted", "type": "category"},
        yaxis={"title": "true", "type": "category", "autorange": "reversed"},
        height=360,
        margin={"t": 60, "b": 40},
    )
    return fig
