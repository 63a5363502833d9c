"""A deployment's monitoring at a glance: its newest ``monitor`` run and its alerts.

Reads what ``monitor()`` stored; it never runs a check, so the sidebar can poll it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from .. import store
from ..config import Settings
from ..serving.manager import get_deployment
from .monitor import alerts as all_alerts


@dataclass
class MonitorRun:
    """What the newest ``monitor`` run of a deployment found."""

    run_id: str
    time: int
    version: str
    window: str
    rows: int | None
    share_drifted: float | None
    columns_drifted: int | None
    alert: bool
    actions: list[str]
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    error_rate: float | None
    drift_scores: dict[str, float] = field(default_factory=dict)
    #: labelled quality of the window (``accuracy``, ``f1``, ... or ``rmse``, ...), if any
    quality: dict[str, float] = field(default_factory=dict)
    #: per-slice results: ``slice_min_<metric>`` (the worst slice), ``fairness_<metric>``
    fairness: dict[str, float] = field(default_factory=dict)
    #: why the policy triggered (drift, each quality or slice threshold passed)
    reasons: list[str] = field(default_factory=list)
    #: how far the features' weights moved from the reference's (0-1), when explained
    attribution_shift: float | None = None
    #: feature -> {"window": mean |attribution|, "reference": ...}, when explained
    attributions: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def latest_monitor_run(settings: Settings, deployment_id: str, model: str) -> MonitorRun | None:
    """The newest stored ``monitor`` run of ``deployment_id``; None if never monitored."""
    client = store.client(settings)
    found = client.get_experiment_by_name(f"monitor/{model}")
    if found is None:
        return None
    quoted = deployment_id.replace("'", "")
    runs = client.search_runs(
        [found.experiment_id],
        filter_string=(f"tags.`mlops.kind` = 'monitor' and tags.`mlops.deployment` = '{quoted}'"),
        max_results=1,
        order_by=["attributes.start_time DESC"],
    )
    if not runs:
        return None
    run = runs[0]
    metrics, tags = run.data.metrics, run.data.tags

    def number(key: str) -> float | None:
        value = metrics.get(key)
        return None if value is None else float(value)

    rows = number("rows")
    drifted = number("drift.columns_drifted")
    try:
        actions = [str(a) for a in json.loads(tags.get("mlops.actions", "[]"))]
    except ValueError:
        actions = []
    try:
        reasons = [str(r) for r in json.loads(tags.get("mlops.alert_reasons", "[]"))]
    except ValueError:
        reasons = []
    top = ("accuracy", "f1", "precision", "recall", "mae", "rmse", "r2", "labelled_rows")
    return MonitorRun(
        run_id=run.info.run_id,
        time=run.info.start_time,
        version=tags.get("mlops.model_version", ""),
        window=tags.get("mlops.window", ""),
        rows=None if rows is None else int(rows),
        share_drifted=number("drift.share_drifted"),
        columns_drifted=None if drifted is None else int(drifted),
        alert=tags.get("mlops.alert") == "true",
        actions=actions,
        latency_p50_ms=number("latency_p50_ms"),
        latency_p95_ms=number("latency_p95_ms"),
        error_rate=number("error_rate"),
        drift_scores={
            k.removeprefix("drift.score."): float(v)
            for k, v in metrics.items()
            if k.startswith("drift.score.")
        },
        quality={m: float(metrics[f"quality.{m}"]) for m in top if f"quality.{m}" in metrics},
        fairness={
            k: float(v)
            for k, v in metrics.items()
            if k.startswith(("fairness_", "slice_min_", "slice_max_"))
        },
        reasons=reasons,
        attribution_shift=number("attribution_shift"),
        attributions=_attributions(metrics),
    )


def _attributions(metrics: dict[str, float]) -> dict[str, dict[str, float]]:
    found: dict[str, dict[str, float]] = {}
    for key, value in metrics.items():
        for side in ("window", "reference"):
            prefix = f"attribution.{side}."
            if key.startswith(prefix):
                found.setdefault(key.removeprefix(prefix), {})[side] = float(value)
    return found


@dataclass
class MonitorStatus:
    """A deployment's latest drift status and its alerts, without running a check."""

    deployment: str
    model: str
    latest: MonitorRun | None
    alerts: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def monitor_status(settings: Settings, deployment_id: str, *, alerts: int = 20) -> MonitorStatus:
    """The newest monitor run of a deployment and its alerts, newest first."""
    deployment = get_deployment(deployment_id, settings=settings)
    mine = [
        a
        for a in all_alerts(settings=settings, limit=10_000)
        if a.get("deployment") == deployment_id
    ]
    return MonitorStatus(
        deployment=deployment_id,
        model=deployment.model,
        latest=latest_monitor_run(settings, deployment_id, deployment.model),
        alerts=mine[:alerts],
    )
