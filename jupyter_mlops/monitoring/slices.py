"""Slices of a labelled window: metrics per group of the model's slice columns, with
fairlearn's ``MetricFrame``, and its disparities (demographic parity difference, equalized
odds difference) for a classifier, judged by the policy.

The slice columns are those ``mlops.yaml`` names for the model (``models.NAME.slices``),
usually context columns the requests carry (``models.NAME.context``); a model input can be
one too. Policy in ``mlops.yaml``::

    monitoring:
      fairness: {demographic_parity_difference: 0.2}  # act when a disparity is above this
      slices: {accuracy: 0.8}                          # act when the worst slice is below

A threshold on an error (``mae``, ``rmse``) acts when the worst slice is above it. Slices
are judged with the window's quality (``monitoring.quality.min_labels`` labels at least).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from ..analysis.fairness import (
    CLASSIFIER_METRICS,
    FAIRNESS_METRICS,
    LOWER_IS_BETTER,
    REGRESSOR_METRICS,
    slice_report,
)
from ..config import CONFIG_FILE, Settings, model_settings
from ..exceptions import ConfigError, MlopsError

#: a group of a slice column whose value the request did not send
MISSING = "(missing)"


class SliceColumnError(MlopsError):
    """A slice column the model declares is not in its captured traffic."""


@dataclass(frozen=True)
class SlicePolicy:
    """``monitoring.fairness`` (largest disparity allowed) and ``monitoring.slices``
    (the worst slice's bound)."""

    fairness: dict[str, float] = field(default_factory=dict)
    slices: dict[str, float] = field(default_factory=dict)


def _thresholds(
    raw: Any, known: tuple[str, ...], path: str, where: str, what: str
) -> dict[str, float]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        example = f"{{{known[0]}: 0.2}}"
        raise ConfigError(f"expected a mapping like {example}", path=path, field=where)
    out: dict[str, float] = {}
    for key, value in raw.items():
        if key not in known:
            raise ConfigError(
                f"unknown key {key!r}: monitor computes no such metric (known: {', '.join(known)})",
                path=path,
                field=where,
            )
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
            raise ConfigError(
                f"must be a number ({what}), got {value!r}", path=path, field=f"{where}.{key}"
            )
        out[str(key)] = float(value)
    return out


def parse_slices(fairness: Any, slices: Any, path: str) -> SlicePolicy:
    """The ``fairness:`` and ``slices:`` thresholds of ``monitoring:``, checked."""
    return SlicePolicy(
        _thresholds(fairness, FAIRNESS_METRICS, path, "monitoring.fairness",
                    "the largest disparity allowed, like 0.2"),
        _thresholds(slices, (*CLASSIFIER_METRICS, *REGRESSOR_METRICS), path,
                    "monitoring.slices", "the bound of the worst slice, like 0.8"),
    )  # fmt: skip


@dataclass
class SliceQuality:
    """What the slices of a labelled window showed, and what the policy made of it."""

    columns: list[str]
    rows: int
    #: column -> metric -> group -> value (``count`` included)
    by_group: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    #: metric -> the worst group: {column, group, value, count}
    worst: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: fairness metric -> {value, column, by_column}
    disparities: dict[str, dict[str, Any]] = field(default_factory=dict)
    breaches: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        parts = [
            f"worst {m} {w['value']:.3f} ({w['column']}={w['group']}, {w['count']} rows)"
            for m, w in self.worst.items()
            if m in ("accuracy", "rmse", "mae")
        ]
        parts += [f"{m} {d['value']:.3f}" for m, d in self.disparities.items()]
        return f"slices by {', '.join(self.columns)}: " + "; ".join(parts)

    def metrics(self) -> dict[str, float]:
        """Run metrics, named as evaluation names them (``slice_min_accuracy``,
        ``fairness_demographic_parity_difference``), and each group's as
        ``slice.<column>.<group>.<metric>``."""
        out: dict[str, float] = {}
        for metric, w in self.worst.items():
            end = "max" if metric in LOWER_IS_BETTER else "min"
            out[f"slice_{end}_{metric}"] = float(w["value"])
        for metric, d in self.disparities.items():
            out[f"fairness_{metric}"] = float(d["value"])
        for column, table in self.by_group.items():
            for metric, groups in table.items():
                for group, value in list(groups.items())[:50]:
                    key = _key(f"slice.{column}.{group}.{metric}")
                    out[key] = float(value)
        return out


def _key(text: str) -> str:
    return re.sub(r"[^/\w.\- :]", "_", text)[:250]  # MLflow's allowed key characters


def slice_columns(settings: Settings, model: str, frame: Any, deployment: str) -> list[str]:
    """The model's slice columns, each checked to be in the captured ``frame``."""
    declared = list(model_settings(settings, model).slices)
    missing = [c for c in declared if c not in frame.columns]
    if missing:
        context = list(model_settings(settings, model).context)
        captured = [*frame.attrs.get("inputs", []), *frame.attrs.get("context", [])]
        hint = (
            f"add it to models.{model}.context so requests can carry it"
            if missing[0] not in context
            else "requests to it carried no such column yet"
        )
        raise SliceColumnError(
            f"slice column {missing[0]!r} (models.{model}.slices in "
            f"{settings.project_dir / CONFIG_FILE}) is not in the captured traffic of "
            f"{deployment} (captured columns: {', '.join(map(str, captured)) or 'none'}): {hint}"
        )
    return declared


def window_slices(
    labelled: Any, truth: Any, predicted: Any, task: str, columns: list[str]
) -> SliceQuality:
    """Per-slice metrics and disparities of labels ``truth`` and ``predicted`` over the
    groups of ``columns`` of ``labelled`` (a request without the column: ``(missing)``)."""
    groups = labelled[columns].reset_index(drop=True)
    groups = groups.astype(object).where(groups.notna(), MISSING)
    kind = "classifier" if task == "classification" else "regressor"
    report = slice_report(truth, predicted, groups, kind, None)
    worst = {}
    for metric, ends in report.extremes.items():
        worst[metric] = ends["max" if metric in LOWER_IS_BETTER else "min"]
    return SliceQuality(
        columns=columns,
        rows=len(groups),
        by_group=report.by_group,
        worst=worst,
        disparities=report.disparities,
    )


def judge_slices(found: SliceQuality, policy: SlicePolicy, what: str, path: str) -> None:
    """Fill ``found.breaches``; a threshold on a metric this window does not compute (a
    disparity of a regression) is an error."""
    for metric, limit in policy.fairness.items():
        if metric not in found.disparities:
            raise ConfigError(
                f"{what} is judged as a regression: fairlearn's {metric} is a classifier's",
                path=path,
                field=f"monitoring.fairness.{metric}",
            )
        d = found.disparities[metric]
        if d["value"] > limit:
            found.breaches.append(
                f"{metric} by {d['column']} is {d['value']:.3f}, more than {limit:g}"
            )
    for metric, limit in policy.slices.items():
        if metric not in found.worst:
            raise ConfigError(
                f"{what}: monitor computes {', '.join(found.worst)} per slice, never {metric}",
                path=path,
                field=f"monitoring.slices.{metric}",
            )
        w = found.worst[metric]
        lower = metric in LOWER_IS_BETTER
        if (w["value"] > limit) if lower else (w["value"] < limit):
            found.breaches.append(
                f"worst slice {w['column']}={w['group']} ({w['count']} rows): {metric} "
                f"{w['value']:.3f}, {'above' if lower else 'below'} {limit:g}"
            )
