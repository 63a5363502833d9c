"""``monitor(deployment)``: drift of what a deployment saw against what its model was
trained on, the predictions it made, its latency and errors; a ``monitor`` run in MLflow;
and, past the policy's threshold, an alert, a rollback or a retraining.

Policy in ``mlops.yaml``::

    monitoring:
      drift_share: 0.3              # act when this share of columns drift (default 0.5)
      actions: [alert, rollback]    # alert | rollback | retrain
      retrain_pipeline: templates/pipeline.yaml
      quality: {accuracy_drop: 0.05} # labelled quality below the version's (see .quality)
      fairness: {demographic_parity_difference: 0.2}  # per slice (see .slices)
      slices: {accuracy: 0.8}       # the worst slice of models.NAME.slices below this
      attributions: true            # SHAP of the window vs the reference (see .attributions)
      attribution_shift: 0.3        # act when the features' weights moved this much (0-1)

With labels for the window (``log_labels``, ``POST /feedback``), quality is computed and
judged too, and per slice when the model declares slice columns; drift, quality or a slice
past its threshold triggers the actions. With attributions on, the features that drive the
answers now are compared with those that drove them on the reference sample, and a shift
past ``attribution_shift`` triggers the actions too. A retrain gets
the labelled window as an input dataset of its pipeline run (and as the pipeline parameter
``labelled_window``, a Parquet path, when the pipeline declares one).
"""

from __future__ import annotations

import datetime
import json
import re
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .. import store
from ..config import CONFIG_FILE, Settings, load_settings, model_settings
from ..exceptions import ConfigError, MlopsError, NotFoundError
from .attributions import AttributionShift, attribution_shift
from .drift import DRIFT_SHARE, DriftInputError, drift
from .quality import (
    QualityPolicy,
    QualityReport,
    paired,
    parse_quality,
    quality_metrics,
    window_quality,
)
from .slices import SlicePolicy, SliceQuality, judge_slices, parse_slices, window_slices

_ACTIONS = ("alert", "rollback", "retrain")
_WINDOW = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Policy:
    drift_share: float = DRIFT_SHARE
    actions: tuple[str, ...] = ("alert",)
    retrain_pipeline: str | None = None
    quality: QualityPolicy = field(default_factory=QualityPolicy)
    slices: SlicePolicy = field(default_factory=SlicePolicy)
    #: explain the window against the reference on every check
    attributions: bool = False
    #: act when the attribution shift reaches this (None: never on attributions)
    attribution_shift: float | None = None


@dataclass
class MonitorResult:
    deployment: str
    model: str
    version: str
    run_id: str
    rows: int
    drift: dict[str, Any]
    triggered: bool
    actions: list[str] = field(default_factory=list)
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    error_rate: float | None = None
    prediction_shares: dict[str, float] = field(default_factory=dict)
    #: quality over the labelled rows of the window (``QualityReport.to_dict()``), or None
    quality: dict[str, Any] | None = None
    #: why the policy triggered: ``drift`` and/or each quality threshold passed
    reasons: list[str] = field(default_factory=list)
    #: per-slice quality and disparities over the labelled rows (``SliceQuality``), or None
    slices: dict[str, Any] | None = None
    #: attributions of the window vs the reference (``AttributionShift``), or None
    attributions: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        share = self.drift["share_drifted"]
        lines = [
            f"{self.deployment} ({self.model} v{self.version}), {self.rows} rows: "
            f"{len(self.drift['drifted_columns'])} of {len(self.drift['columns'])} columns "
            f"drifted ({share:.0%})",
        ]
        if self.latency_p95_ms is not None:
            lines.append(
                f"latency p50 {self.latency_p50_ms:.2f} ms, p95 {self.latency_p95_ms:.2f} ms"
            )
        if self.error_rate is not None:
            lines.append(f"error rate {self.error_rate:.2%}")
        if self.quality is not None:
            lines.append(QualityReport(**_report_fields(self.quality)).summary())
        if self.slices is not None:
            lines.append(SliceQuality(**self.slices).summary())
        if self.attributions is not None:
            lines.append(AttributionShift(**self.attributions).summary())
        lines.extend(f"  {r}" for r in self.reasons if r != "drift")
        lines.append(
            f"ALERT: {', '.join(self.actions) or 'triggered (no action taken)'}"
            if self.triggered
            else "within policy: no action"
        )
        lines.append(f"monitor run {self.run_id}")
        return "\n".join(lines)


def _report_fields(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != "triggered"}


def parse_window(window: str | float | int) -> float:
    """``"15m"``, ``"1h"``, ``"2d"`` or seconds."""
    if isinstance(window, (int, float)):
        seconds = float(window)
    else:
        found = _WINDOW.match(str(window))
        if not found:
            raise MlopsError(f"window {window!r}: write it like 15m, 1h or 2d")
        seconds = float(found.group(1)) * _UNITS[found.group(2)]
    if seconds <= 0:
        raise MlopsError(f"window {window!r} must be longer than zero")
    return seconds


def load_policy(settings: Settings) -> Policy:
    raw = settings.raw.get("monitoring") or {}
    path = str(settings.project_dir / CONFIG_FILE)
    if not isinstance(raw, dict):
        raise ConfigError("expected a mapping", path=path, field="monitoring")
    known = {
        "drift_share",
        "actions",
        "retrain_pipeline",
        "quality",
        "fairness",
        "slices",
        "attributions",
        "attribution_shift",
    }
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"unknown key {unknown[0]!r}", path=path, field="monitoring")
    share = raw.get("drift_share", DRIFT_SHARE)
    if not isinstance(share, (int, float)) or isinstance(share, bool) or not 0 < share <= 1:
        raise ConfigError("must be a number in (0, 1]", path=path, field="monitoring.drift_share")
    actions = raw.get("actions", ["alert"])
    if not isinstance(actions, list) or any(a not in _ACTIONS for a in actions):
        raise ConfigError(
            f"must be a list of {', '.join(_ACTIONS)}", path=path, field="monitoring.actions"
        )
    explain = raw.get("attributions", False)
    if not isinstance(explain, bool):
        raise ConfigError(
            f"must be true or false, got {explain!r}", path=path, field="monitoring.attributions"
        )
    shift = raw.get("attribution_shift")
    if shift is not None and (
        not isinstance(shift, (int, float)) or isinstance(shift, bool) or not 0 < shift <= 1
    ):
        raise ConfigError(
            f"must be a number in (0, 1], got {shift!r}",
            path=path,
            field="monitoring.attribution_shift",
        )
    pipeline = raw.get("retrain_pipeline")
    if "retrain" in actions and not pipeline:
        raise ConfigError(
            "the retrain action needs monitoring.retrain_pipeline", path=path, field="monitoring"
        )
    return Policy(
        float(share),
        tuple(actions),
        pipeline,
        parse_quality(raw.get("quality"), path),
        parse_slices(raw.get("fairness"), raw.get("slices"), path),
        # a threshold on the shift needs the shift
        explain or shift is not None,
        None if shift is None else float(shift),
    )


def reference_sample(settings: Settings, model: str, version: str) -> Any:
    """The reference sample logged when this version was packaged."""
    import os

    import pandas as pd
    from mlflow.exceptions import MlflowException

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    client = store.client(settings)
    run_id = client.get_model_version(model, version).run_id
    if not run_id:
        raise NotFoundError(f"{model} v{version} has no source run to read a reference from")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = client.download_artifacts(run_id, "reference.parquet", tmp)
            return pd.read_parquet(path)
    except (MlflowException, OSError):
        raise NotFoundError(
            f"{model} v{version} was packaged without a reference sample "
            "(package(..., reference=training_inputs))"
        ) from None


def _error_rate(url: str, token: str | None) -> float | None:
    try:
        request = urllib.request.Request(f"{url}/metrics")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(request, timeout=2) as response:
            text = response.read().decode()
    except (OSError, urllib.error.URLError):
        return None
    ok = sum(float(m) for m in re.findall(r"^mlops_requests_total\{[^}]*\} (\S+)$", text, re.M))
    bad = sum(
        float(m) for m in re.findall(r"^mlops_request_errors_total\{[^}]*\} (\S+)$", text, re.M)
    )
    return bad / (ok + bad) if ok + bad else None


def _metric_key(column: str) -> str:
    """A column name as MLflow allows in a metric key (a table's names may hold anything)."""
    return re.sub(r"[^/\w.\- :]", "_", column)[:200]


def _predictions(current: Any, outputs: list[str]) -> dict[str, float]:
    """Share of each predicted class: a column model's label output (one integer or string
    per row) as it is, else the arg max of a tensor model's first output."""
    import numpy as np

    labels = [c for c in outputs if c.startswith("out.") and current[c].dtype.kind in "iuOb"]
    if labels:
        counts = current[labels[0]].astype(str).value_counts(normalize=True)
        return {str(k): float(v) for k, v in counts.items()}
    outs = [c for c in outputs if re.fullmatch(r"out\d+", str(c))]
    if not outs:
        return {}
    picked = current[outs].to_numpy().argmax(axis=1)
    values, counts = np.unique(picked, return_counts=True)
    return {str(int(v)): float(c) / len(picked) for v, c in zip(values, counts, strict=True)}


def _record_alert(settings: Settings, entry: dict[str, Any]) -> None:
    path = settings.state_dir / "alerts.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry) + "\n")


def alerts(*, settings: Settings | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """The most recent alerts, newest first."""
    settings = settings or load_settings()
    path = settings.state_dir / "alerts.jsonl"
    if not path.exists():
        return []
    entries = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return list(reversed(entries))[:limit]


def _act(
    settings: Settings, policy: Policy, deployment: Any, reason: str, labelled: Any
) -> list[str]:
    from ..registry.service import rollback
    from ..serving.manager import switch

    done = []
    for action in policy.actions:
        if action == "alert":
            done.append("alert")
        elif action == "rollback":
            alias = deployment.follow or "champion"
            why = f"{reason} on {deployment.id}"
            move = rollback(deployment.model, alias, why, settings=settings)
            switch(deployment.id, f"{deployment.model}/{move.to_version}", settings=settings)
            done.append(
                f"rollback {deployment.model}@{alias} v{move.from_version} -> v{move.to_version}"
            )
        elif action == "retrain" and policy.retrain_pipeline:
            done.append(_retrain(settings, policy.retrain_pipeline, deployment.id, labelled))
    return done


def _retrain(settings: Settings, pipeline: str, deployment_id: str, labelled: Any) -> str:
    from ..pipelines.runner import PipelineFailed, run_pipeline
    from ..pipelines.spec import load_pipeline
    from .labels import log_window_input, save_window

    spec = load_pipeline(settings.resolve_inside(pipeline))
    window = save_window(settings, deployment_id, labelled) if len(labelled) else None
    params = {"labelled_window": str(window)} if window and "labelled_window" in spec.params else {}
    try:
        result = run_pipeline(spec, params, settings=settings, progress=False, use_cache=False)
        status, run_id = result.status, result.run_id
    except PipelineFailed as err:
        status, run_id = "FAILED", err.result.run_id
    if window is not None and run_id:
        log_window_input(settings, run_id, window, labelled)
    return f"retrain {status} (pipeline run {run_id})"


def monitor(
    deployment_id: str,
    window: str | float = "1h",
    *,
    act: bool = True,
    full_report: bool = False,
    drift_context: bool = False,
    attributions: bool | None = None,
    settings: Settings | None = None,
) -> MonitorResult:
    """Check a deployment's recent traffic; log a ``monitor`` run; act on the policy.

    Context columns (``models.NAME.context``) are no model features: drift leaves them out
    unless ``drift_context=True`` (then those the reference sample has are compared too).
    ``attributions`` (default: ``monitoring.attributions``) explains a sample of the window
    and of the reference with Kernel SHAP (a few seconds) and compares the two.

    >>> jupyter_mlops.monitor("digits-prod", window="15m")  # doctest: +SKIP
    """
    from mlflow.entities import Metric, RunTag

    from ..serving.capture import context_columns_of, input_columns, output_columns
    from ..serving.manager import get_deployment, inference_log
    from .sources import align

    settings = settings or load_settings()
    policy = load_policy(settings)
    seconds = parse_window(window)
    deployment = get_deployment(deployment_id, settings=settings)
    current = inference_log(deployment_id, since=time.time() - seconds, settings=settings)
    if current.empty:
        raise DriftInputError(
            f"{deployment_id} received no requests in the last {window}: nothing to compare"
        )
    version = str(current["version"].value_counts().idxmax())
    reference = reference_sample(settings, deployment.model, version)
    features = input_columns(current)
    context = [*model_settings(settings, deployment.model).context, *context_columns_of(current)]
    if drift_context:
        features += [c for c in context_columns_of(current) if c in reference.columns]
    else:  # a reference sample of the evaluation table may hold them: not features either
        reference = reference.drop(columns=[c for c in set(context) if c in reference.columns])
    ref, cur = align(reference, current[features])
    report = drift(ref, cur)
    explained = None
    if policy.attributions if attributions is None else attributions:
        explained = _attributions(settings, deployment.model, version, reference, current, context)
    shares = _predictions(current, output_columns(current))
    latency = current.drop_duplicates(["time", "version"])["latency_ms"]
    judged, labelled = window_quality(settings, policy.quality, deployment, version, current)
    sliced = _slices(settings, policy, deployment, version, judged, labelled, current)
    reasons = ["drift"] if report.share_drifted >= policy.drift_share else []
    reasons.extend(judged.breaches if judged else [])
    reasons.extend(sliced.breaches if sliced else [])
    if (
        explained is not None
        and policy.attribution_shift is not None
        and explained.shift >= policy.attribution_shift
    ):
        reasons.append(f"{explained.summary()} (at least {policy.attribution_shift:g})")
    triggered = bool(reasons)
    client = store.client(settings)
    experiment = store.get_or_create_experiment(settings, f"monitor/{deployment.model}")
    run = client.create_run(
        experiment,
        tags={
            "mlops.kind": "monitor",
            "mlops.deployment": deployment_id,
            "mlops.model_name": deployment.model,
            "mlops.model_version": version,
            "mlops.window": str(window),
        },
        run_name=f"monitor {deployment_id}",
    )
    run_id = run.info.run_id
    # what the rollback's reason and the alert name
    if reasons[:1] == ["drift"]:
        cause = "drift"
    elif judged is not None and judged.breaches:
        cause = "quality"
    elif sliced is not None and sliced.breaches:
        cause = "fairness"
    else:
        cause = "attribution shift"
    actions = _act(settings, policy, deployment, cause, labelled) if triggered and act else []
    now = int(time.time() * 1000)
    error_rate = (
        _error_rate(deployment.url, deployment.token) if deployment.status == "running" else None
    )
    metrics = {
        "drift.share_drifted": report.share_drifted,
        "drift.columns_drifted": float(len(report.drifted_columns)),
        "rows": float(len(current)),
        "latency_p50_ms": float(latency.quantile(0.5)),
        "latency_p95_ms": float(latency.quantile(0.95)),
        **{f"prediction_share.{k}": v for k, v in shares.items()},
        **{f"drift.score.{_metric_key(c.column)}": c.score for c in report.columns[:200]},
    }
    if error_rate is not None:
        metrics["error_rate"] = error_rate
    if judged is not None:
        metrics.update(quality_metrics(judged))
    if sliced is not None:
        metrics.update(sliced.metrics())
    if explained is not None:
        metrics["attribution_shift"] = explained.shift
        for side, values in (("window", explained.window), ("reference", explained.reference)):
            metrics.update({f"attribution.{side}.{_metric_key(f)}": v for f, v in values.items()})
    logged = [Metric(k, float(v), now, 0) for k, v in metrics.items() if v == v]
    for start in range(900, len(logged), 900):  # under MLflow's 1000 per batch
        client.log_batch(run_id, metrics=logged[start : start + 900])
    client.log_batch(
        run_id,
        metrics=logged[:900],
        tags=[
            RunTag("mlops.alert", str(triggered).lower()),
            RunTag("mlops.actions", json.dumps(actions)),
            RunTag("mlops.alert_reasons", json.dumps(reasons)),
        ],
    )
    if judged is not None:
        client.log_dict(run_id, judged.to_dict(), "quality.json")
    if sliced is not None:
        client.log_dict(run_id, sliced.to_dict(), "slices.json")
    client.log_dict(run_id, report.to_dict(), "drift.json")
    client.log_text(run_id, report.figure().to_json(), "drift_figure.json")
    if explained is not None:
        client.log_dict(run_id, explained.to_dict(), "attributions.json")
        client.log_text(run_id, explained.figure().to_json(), "attributions_figure.json")
    if full_report:
        with tempfile.TemporaryDirectory() as tmp:
            client.log_artifact(run_id, str(report.save_html(Path(tmp) / "drift_report.html")))
    client.set_terminated(run_id, "FINISHED")
    result = MonitorResult(
        deployment=deployment_id,
        model=deployment.model,
        version=version,
        run_id=run_id,
        rows=len(current),
        drift=report.to_dict(),
        triggered=triggered,
        actions=actions,
        latency_p50_ms=metrics["latency_p50_ms"],
        latency_p95_ms=metrics["latency_p95_ms"],
        error_rate=error_rate,
        prediction_shares=shares,
        quality=judged.to_dict() if judged else None,
        reasons=reasons,
        slices=sliced.to_dict() if sliced else None,
        attributions=explained.to_dict() if explained else None,
    )
    if triggered:
        _record_alert(
            settings,
            {
                "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "deployment": deployment_id,
                "model": deployment.model,
                "version": version,
                "share_drifted": report.share_drifted,
                "drifted_columns": report.drifted_columns,
                "actions": actions,
                "reasons": reasons,
                "run_id": run_id,
            },
        )
    return result


def _attributions(
    settings: Settings,
    model: str,
    version: str,
    reference: Any,
    current: Any,
    context: list[str],
) -> AttributionShift:
    """The window's model inputs (never its context columns) explained against the
    reference's, matched the way drift matches them."""
    from ..serving.capture import input_columns
    from .sources import align

    inputs = input_columns(current)
    named = reference[[c for c in reference.columns if c not in context]]
    ref, cur = align(named, current[inputs])
    if list(ref.columns) != list(named.columns):  # a tensor model's f0..fn: say the real names
        ref, cur = named, cur.set_axis(list(named.columns), axis=1)
    missing = [c for c in cur.columns if c not in ref.columns]
    if missing:
        raise MlopsError(
            f"attributions of {model} v{version}: its reference sample lacks the inputs "
            f"{', '.join(map(str, missing[:5]))}, so the two cannot be explained alike"
        )
    return attribution_shift(settings, model, version, ref[list(cur.columns)], cur)


def _slices(
    settings: Settings,
    policy: Policy,
    deployment: Any,
    version: str,
    judged: QualityReport | None,
    labelled: Any,
    current: Any,
) -> SliceQuality | None:
    """Per-slice quality of the labelled rows when the model declares slice columns (None
    without labels or slices); judged once there are ``min_labels`` labels."""
    from ..serving.capture import output_columns
    from .slices import slice_columns

    if judged is None:
        return None
    columns = slice_columns(settings, deployment.model, current, deployment.id)
    if not columns:
        return None
    truth, predicted = paired(labelled, output_columns(current), judged.task)
    found = window_slices(labelled, truth, predicted, judged.task, columns)
    if len(labelled) >= policy.quality.min_labels:
        what = f"{deployment.model} v{version}"
        judge_slices(found, policy.slices, what, str(settings.project_dir / CONFIG_FILE))
    return found


def format_alerts(entries: list[dict[str, Any]]) -> str:
    if not entries:
        return "no alerts"
    from ..table import format_rows

    rows = [
        [
            e["time"],
            e["deployment"],
            f"{e['model']} v{e['version']}",
            f"{e['share_drifted']:.0%}",
            ", ".join(e["drifted_columns"][:6]),
            "; ".join(e["actions"]),
        ]
        for e in entries
    ]
    return format_rows(("time", "deployment", "model", "drifted", "columns", "actions"), rows)
