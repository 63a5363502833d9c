"""Per-slice metrics and disparities, with fairlearn's ``MetricFrame`` and its disparity
metrics (demographic parity difference, equalized odds difference).

A multiclass model's disparity is the worst one-vs-rest disparity over its classes; a
binary model's is fairlearn's own, for the positive label.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: per-slice metrics by task; higher is better for all but the errors
CLASSIFIER_METRICS = ("accuracy", "f1", "precision", "recall")
REGRESSOR_METRICS = ("mae", "rmse", "r2")
LOWER_IS_BETTER = frozenset({"mae", "rmse"})
FAIRNESS_METRICS = ("demographic_parity_difference", "equalized_odds_difference")


@dataclass
class SliceReport:
    """What the slices of one evaluation showed."""

    #: column -> metric -> group -> value (``count`` included)
    by_group: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    #: metric -> {"min": {...}, "max": {...}}, each {column, group, value, count}
    extremes: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    #: fairness metric -> {"value", "column", "by_column": {column: value}}
    disparities: dict[str, dict[str, Any]] = field(default_factory=dict)

    def metrics(self) -> dict[str, float]:
        """The run metrics gates read: ``slice_min_<m>``, ``slice_max_<m>``, ``fairness_<m>``."""
        out: dict[str, float] = {}
        for metric, ends in self.extremes.items():
            out[f"slice_min_{metric}"] = float(ends["min"]["value"])
            out[f"slice_max_{metric}"] = float(ends["max"]["value"])
        for metric, found in self.disparities.items():
            out[f"fairness_{metric}"] = float(found["value"])
        return out


def _metric_fns(task: str) -> dict[str, Any]:
    from functools import partial

    from sklearn import metrics as m

    if task == "classifier":
        return {
            "accuracy": m.accuracy_score,
            "f1": partial(m.f1_score, average="macro", zero_division=0),
            "precision": partial(m.precision_score, average="macro", zero_division=0),
            "recall": partial(m.recall_score, average="macro", zero_division=0),
            "count": lambda y, _p: float(len(y)),
        }

    def rmse(y: Any, p: Any) -> float:
        return float(m.mean_squared_error(y, p) ** 0.5)

    def r2(y: Any, p: Any) -> float:
        # R² of a one-row group is undefined; fairlearn would pass sklearn's warning on
        return float(m.r2_score(y, p)) if len(y) > 1 else float("nan")

    return {
        "mae": m.mean_absolute_error,
        "rmse": rmse,
        "r2": r2,
        "count": lambda y, _p: float(len(y)),
    }


def slice_report(
    y_true: Any, y_pred: Any, groups: Any, task: str, classes: list[Any] | None
) -> SliceReport:
    """Metrics per group of every column of ``groups``; disparities for a classifier."""
    import numpy as np
    from fairlearn.metrics import (
        MetricFrame,
        demographic_parity_difference,
        equalized_odds_difference,
    )

    report = SliceReport()
    fns = _metric_fns(task)
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    for column in groups.columns:
        sensitive = groups[column].astype(str).to_numpy()
        frame = MetricFrame(metrics=fns, y_true=y_true, y_pred=y_pred, sensitive_features=sensitive)
        table = frame.by_group
        report.by_group[column] = {
            metric: {str(g): float(v) for g, v in table[metric].items()} for metric in fns
        }
        counts = report.by_group[column]["count"]
        for metric in fns:
            if metric == "count":
                continue
            values = {g: v for g, v in report.by_group[column][metric].items() if v == v}
            if not values:
                continue
            for end, pick in (("min", min), ("max", max)):
                group = pick(values, key=lambda g: values[g])
                found = {
                    "column": column,
                    "group": group,
                    "value": values[group],
                    "count": int(counts[group]),
                }
                ends = report.extremes.setdefault(metric, {})
                if end not in ends or pick(ends[end]["value"], found["value"]) == found["value"]:
                    ends[end] = found
        if task != "classifier":
            continue
        labels = classes if classes is not None else sorted(set(y_true) | set(y_pred))
        # binary: the positive (last) label; multiclass: the worst class, one-vs-rest
        positives = labels[-1:] if len(labels) == 2 else labels
        for name, fn in (
            ("demographic_parity_difference", demographic_parity_difference),
            ("equalized_odds_difference", equalized_odds_difference),
        ):
            worst = max(
                float(fn(y_true == c, y_pred == c, sensitive_features=sensitive)) for c in positives
            )
            entry = report.disparities.setdefault(name, {"value": worst, "column": column})
            entry.setdefault("by_column", {})[column] = worst
            if worst > entry["value"]:
                entry.update(value=worst, column=column)
    return report
