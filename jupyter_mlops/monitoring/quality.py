"""Quality of a deployment's predictions against their labels, and the policy that judges it.

Classification: accuracy, F1, precision and recall (macro for more than two classes, of
class 1 for two, as Evidently's ClassificationPreset reports them), per-class precision and
recall, the confusion matrix. Regression: MAE, RMSE, R². The numbers are Evidently's: the
classification report and confusion matrix its classification metrics are computed from
(without a Report's widgets and plots, most of its time: benchmarks/quality_speed.py), and
its regression metrics.

Policy in ``mlops.yaml``::

    monitoring:
      quality:
        accuracy_drop: 0.05   # act when accuracy is 5 points below the version's own
        rmse_rise: 0.5        # errors: act when RMSE is 0.5 above the version's
        min_labels: 30        # judge only a window with at least this many labels (10)

The version's own value of a metric is looked up on the run it was packaged from, as
``test_<metric>``, ``<metric>``, ``eval_<metric>``, ``val_<metric>`` (first found).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from .. import store
from ..config import CONFIG_FILE, Settings
from ..exceptions import ConfigError, MlopsError

CLASSIFICATION = ("accuracy", "f1", "precision", "recall")
REGRESSION = ("mae", "rmse", "r2")
#: metrics where higher is better are judged by a drop, errors by a rise
_KEYS = {
    **{f"{m}_drop": m for m in (*CLASSIFICATION, "r2")},
    **{f"{m}_rise": m for m in ("mae", "rmse")},
}
MIN_LABELS = 10
BASELINE_PREFIXES = ("test_", "", "eval_", "val_")


@dataclass(frozen=True)
class QualityPolicy:
    thresholds: dict[str, float] = field(default_factory=dict)
    min_labels: int = MIN_LABELS


def parse_quality(raw: Any, path: str) -> QualityPolicy:
    where = "monitoring.quality"
    if raw is None:
        return QualityPolicy()
    if not isinstance(raw, dict):
        raise ConfigError("expected a mapping like {accuracy_drop: 0.05}", path=path, field=where)
    thresholds: dict[str, float] = {}
    min_labels = MIN_LABELS
    for key, value in raw.items():
        if key == "min_labels":
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError("must be a whole number >= 1", path=path, field=f"{where}.{key}")
            min_labels = value
            continue
        if key not in _KEYS:
            known = ", ".join([*sorted(_KEYS), "min_labels"])
            raise ConfigError(
                f"unknown key {key!r}: monitor computes no such threshold (known: {known})",
                path=path,
                field=where,
            )
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
            raise ConfigError("must be a number >= 0", path=path, field=f"{where}.{key}")
        thresholds[str(key)] = float(value)
    return QualityPolicy(thresholds, min_labels)


@dataclass
class QualityReport:
    """Quality over the labelled rows of a window, beside the version's own numbers."""

    task: str
    rows: int
    metrics: dict[str, float]
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)
    confusion_matrix: dict[str, Any] = field(default_factory=dict)
    baseline: dict[str, float] = field(default_factory=dict)
    breaches: list[str] = field(default_factory=list)

    @property
    def triggered(self) -> bool:
        return bool(self.breaches)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "triggered": self.triggered}

    def summary(self) -> str:
        names = CLASSIFICATION if self.task == "classification" else REGRESSION
        parts = []
        for m in names:
            text = f"{m} {self.metrics[m]:.3f}"
            if m in self.baseline:
                text += f" (version {self.baseline[m]:.3f})"
            parts.append(text)
        return f"quality over {self.rows} labelled rows: " + ", ".join(parts)


def predictions(frame: Any, outputs: list[str]) -> tuple[Any, str]:
    """(the predicted value of each row, ``classification`` | ``regression``): a label
    output (integers, text, booleans) as it is; the arg max of several scores (a class
    index); one number per row is a regression's."""
    labels = [c for c in outputs if frame[c].dtype.kind in "iuOb"]
    if labels:
        return frame[labels[0]], "classification"
    scores = [c for c in outputs if frame[c].dtype.kind == "f"]
    if not scores:
        raise MlopsError(f"no output to judge quality by among {outputs}")
    # a column model's scores share a name (out.probabilities.0, .1, ...); a tensor
    # model's are out0, out1, ...
    first = scores[0]
    base = re.sub(r"\.\d+$", "", first) if first.startswith("out.") else None
    group = [c for c in scores if base and re.sub(r"\.\d+$", "", c) == base]
    group = group or [c for c in scores if re.fullmatch(r"out\d+", c)] or [first]
    if len(group) == 1:
        return frame[group[0]].astype(float), "regression"
    import pandas as pd

    return pd.Series(frame[group].to_numpy().argmax(axis=1), index=frame.index), "classification"


def _as_classes(truth: Any, predicted: Any) -> tuple[Any, Any]:
    """Both sides in one type: integers when both are whole numbers, else text."""
    import pandas as pd

    t = pd.Series(truth).reset_index(drop=True)
    p = pd.Series(predicted).reset_index(drop=True)
    try:
        ti, pi = t.astype(float), p.astype(float)
        if (ti % 1 == 0).all() and (pi % 1 == 0).all():
            low, high = min(ti.min(), pi.min()), max(ti.max(), pi.max())
            # class indices fit a byte: sklearn's many np.unique calls then take a third less
            small = "int8" if low >= -128 and high < 128 else "int64"
            return ti.astype(small), pi.astype(small)
    except (TypeError, ValueError):
        pass
    return t.astype(str), p.astype(str)


def classification_quality(truth: Any, predicted: Any) -> QualityReport:
    """Evidently's classification numbers for labels ``truth`` and predictions ``predicted``:
    its classification report (per class, accuracy, macro averages) and confusion matrix."""
    from evidently.legacy.calculations.classification_performance import calculate_matrix
    from evidently.legacy.metrics.classification_performance.objects import (
        ClassificationReport,
    )

    target, prediction = _as_classes(truth, predicted)
    labels = sorted(set(target.unique()) | set(prediction.unique()))
    matrix = calculate_matrix(target, prediction, labels)
    report = ClassificationReport.create(target, prediction, zero_division=0)
    by_class = report.classes
    # Evidently's rule: two classes are judged by class 1 (its default positive label),
    # more by the macro average
    summary = by_class.get("1") if len(labels) == 2 and "1" in by_class else None
    summary = summary or report.macro_avg
    return QualityReport(
        task="classification",
        rows=len(target),
        metrics={
            "accuracy": float(report.accuracy),
            "f1": float(summary.f1 or 0),
            "precision": float(summary.precision or 0),
            "recall": float(summary.recall or 0),
        },
        per_class={
            str(k): {"precision": float(v.precision or 0), "recall": float(v.recall or 0)}
            for k, v in sorted(by_class.items())
        },
        confusion_matrix={"labels": [str(x) for x in matrix.labels], "values": matrix.values},
    )


def regression_quality(truth: Any, predicted: Any) -> QualityReport:
    """Evidently's MAE, RMSE and R² of ``predicted`` against ``truth``."""
    import pandas as pd
    from evidently import DataDefinition, Dataset, Regression, Report
    from evidently.metrics import MAE, RMSE, R2Score

    frame = pd.DataFrame(
        {"target": pd.Series(truth).astype(float).to_numpy(), "prediction": predicted.to_numpy()}
    )
    definition = DataDefinition(regression=[Regression(target="target", prediction="prediction")])
    dataset = Dataset.from_pandas(frame, data_definition=definition)
    snap = Report([MAE(), RMSE(), R2Score()]).run(dataset, None)
    values = {}
    for item, name in zip(snap.dict()["metrics"], REGRESSION, strict=True):
        value = item["value"]
        values[name] = float(value["mean"] if isinstance(value, dict) else value)
    return QualityReport(task="regression", rows=len(frame), metrics=values)


def quality(labelled: Any, outputs: list[str]) -> QualityReport:
    """Quality of a labelled window (``labelled_window``): classification or regression,
    by what the model answers."""
    predicted, task = predictions(labelled, outputs)
    if task == "regression":
        import pandas as pd

        if pd.to_numeric(labelled["label"], errors="coerce").isna().any():
            task = "classification"  # text labels against scores: they name classes
    if task == "classification":
        return classification_quality(labelled["label"], predicted)
    return regression_quality(labelled["label"], predicted)


def paired(labelled: Any, outputs: list[str], task: str) -> tuple[Any, Any]:
    """(labels, predictions) of a labelled window as ``quality`` judged them for ``task``:
    classes in one type for a classification, numbers for a regression."""
    predicted, _ = predictions(labelled, outputs)
    if task == "classification":
        return _as_classes(labelled["label"], predicted)
    import pandas as pd

    truth = pd.Series(labelled["label"]).astype(float).reset_index(drop=True)
    return truth, pd.Series(predicted).astype(float).reset_index(drop=True)


def version_baseline(settings: Settings, model: str, version: str, task: str) -> dict[str, float]:
    """The version's own value of each metric, from the run it was packaged from."""
    client = store.client(settings)
    run_id = client.get_model_version(model, version).run_id
    recorded = dict(client.get_run(run_id).data.metrics) if run_id else {}
    out = {}
    for metric in CLASSIFICATION if task == "classification" else REGRESSION:
        for prefix in BASELINE_PREFIXES:
            if f"{prefix}{metric}" in recorded:
                out[metric] = float(recorded[f"{prefix}{metric}"])
                break
    return out


def judge(
    report: QualityReport,
    policy: QualityPolicy,
    baseline: dict[str, float],
    what: str,
    path: str,
    *,
    enough: bool = True,
) -> None:
    """Fill ``report.baseline`` and (when there are ``enough`` labels) ``report.breaches``;
    a threshold that cannot be judged (a metric this task does not compute, or one the
    version never recorded) is an error."""
    report.baseline = baseline
    computed = CLASSIFICATION if report.task == "classification" else REGRESSION
    for key, limit in policy.thresholds.items():
        metric = _KEYS[key]
        where = f"monitoring.quality.{key}"
        if metric not in computed:
            raise ConfigError(
                f"{what} is judged as {report.task}: monitor computes {', '.join(computed)} for "
                f"it, never {metric}",
                path=path,
                field=where,
            )
        if metric not in baseline:
            looked = ", ".join(f"{p}{metric}" for p in BASELINE_PREFIXES)
            raise ConfigError(
                f"{what} recorded no {metric} to compare with (looked for {looked} on its "
                f"package run): give package(..., metrics={{'test_{metric}': ...}})",
                path=path,
                field=where,
            )
        now, then = report.metrics[metric], baseline[metric]
        if not enough:
            continue
        change = then - now if key.endswith("_drop") else now - then
        if change > limit:
            verb = "fell" if key.endswith("_drop") else "rose"
            report.breaches.append(
                f"{metric} {verb} by {change:.3f} ({then:.3f} -> {now:.3f}), more than {limit:g}"
            )


def window_quality(
    settings: Settings, policy: QualityPolicy, deployment: Any, version: str, current: Any
) -> tuple[QualityReport | None, Any]:
    """Quality of the labelled rows of ``version`` in the window (None without labels), and
    those rows."""
    from ..serving.capture import output_columns
    from .labels import labelled_window

    labelled = labelled_window(current, settings, deployment.id)
    labelled = labelled[labelled["version"] == version]
    if labelled.empty:
        return None, labelled
    report = quality(labelled, output_columns(current))
    baseline = version_baseline(settings, deployment.model, version, report.task)
    judge(
        report,
        policy,
        baseline,
        f"{deployment.model} v{version}",
        str(settings.project_dir / CONFIG_FILE),
        enough=len(labelled) >= policy.min_labels,
    )
    return report, labelled


def quality_metrics(report: QualityReport) -> dict[str, float]:
    out = {f"quality.{k}": v for k, v in report.metrics.items()}
    out.update({f"quality.version.{k}": v for k, v in report.baseline.items()})
    out["quality.labelled_rows"] = float(report.rows)
    for cls, values in list(report.per_class.items())[:100]:
        for name, value in values.items():
            key = re.sub(r"[^/\w.\- :]", "_", cls)[:200]  # MLflow's allowed key characters
            out[f"quality.{name}.{key}"] = value
    return out
