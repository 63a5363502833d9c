"""Promotion gates: what a model version must show before an alias moves to it.

In ``mlops.yaml``, per alias (or passed to ``promote(..., gates=...)`` in the same shape)::

    registry:
      gates:
        champion:
          metrics: {test_accuracy: ">= 0.9", test_loss: "< 0.4"}
          parity: true                 # the ONNX parity check passed when packaging
          quantized: true              # packaged with quantize=True, within its budget
          beat_current: test_accuracy  # better than the alias's current holder
                                       # ({metric: test_loss, mode: min} when lower is better)
          fairness: {demographic_parity_difference: "<= 0.1"}  # from the newest evaluate()
          slices: {accuracy: ">= 0.85"}                       # every slice (the worst one)
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from ..exceptions import ConfigError

if TYPE_CHECKING:
    from ..analysis.records import EvaluationEvidence

_THRESHOLD = re.compile(r"^\s*(>=|<=|==|>|<)\s*(-?[0-9.eE+-]+)\s*$")
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "==": operator.eq,
}
_KEYS = {"metrics", "parity", "quantized", "beat_current", "fairness", "slices"}
#: what ``evaluate()`` computes (analysis/fairness.py), named here to keep this import light
_FAIRNESS = ("demographic_parity_difference", "equalized_odds_difference")
_SLICE_METRICS = ("accuracy", "f1", "precision", "recall", "mae", "rmse", "r2")
#: package() records these on its run only when the quantized model passed and is served
_QUANTIZED_DIFF = "mlops.quantized_parity_max_abs_diff"
_QUANTIZED_BUDGET = "mlops.quantized_parity_tolerance"
_SIZES = ("mlops.quantized_size_bytes", "mlops.float_size_bytes")


@dataclass(frozen=True)
class GateSpec:
    """The gates of one alias."""

    metrics: dict[str, tuple[str, float]] = field(default_factory=dict)
    parity: bool = False
    quantized: bool = False
    beat_metric: str | None = None
    beat_mode: str = "max"
    #: fairness metric -> threshold, read from the newest evaluation (``fairness_<metric>``)
    fairness: dict[str, tuple[str, float]] = field(default_factory=dict)
    #: per-slice metric -> threshold, met by every slice of the newest evaluation
    slices: dict[str, tuple[str, float]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return (
            not self.metrics
            and not self.parity
            and not self.quantized
            and self.beat_metric is None
            and not self.fairness
            and not self.slices
        )

    @property
    def needs_evaluation(self) -> bool:
        return bool(self.fairness or self.slices)


@dataclass
class GateResult:
    """One gate's verdict and the numbers behind it."""

    gate: str
    passed: bool
    evidence: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_gates(raw: Any, where: str) -> GateSpec:
    """Validate a gate mapping; errors name ``where`` (file and alias) and the field."""
    if raw is None:
        return GateSpec()
    if not isinstance(raw, dict):
        raise ConfigError(
            "expected a mapping of metrics / parity / quantized / beat_current", path=where
        )
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise ConfigError(
            f"unknown gate {unknown[0]!r} (known: {', '.join(sorted(_KEYS))})", path=where
        )
    metrics = _thresholds(raw.get("metrics"), where, "metrics")
    fairness = _thresholds(raw.get("fairness"), where, "fairness", _FAIRNESS)
    slices = _thresholds(raw.get("slices"), where, "slices", _SLICE_METRICS)
    parity = raw.get("parity", False)
    if not isinstance(parity, bool):
        raise ConfigError("must be true or false", path=where, field="parity")
    quantized = raw.get("quantized", False)
    if not isinstance(quantized, bool):
        raise ConfigError("must be true or false", path=where, field="quantized")
    beat = raw.get("beat_current")
    mode = "max"
    if isinstance(beat, dict):
        mode = str(beat.get("mode", "max"))
        beat = beat.get("metric")
        if mode not in ("max", "min"):
            raise ConfigError("mode must be max or min", path=where, field="beat_current.mode")
    if beat is not None and not isinstance(beat, str):
        raise ConfigError("must be a metric name", path=where, field="beat_current")
    return GateSpec(
        metrics=metrics,
        parity=parity,
        quantized=quantized,
        beat_metric=beat,
        beat_mode=mode,
        fairness=fairness,
        slices=slices,
    )


def _thresholds(
    raw: Any, where: str, key: str, known: tuple[str, ...] | None = None
) -> dict[str, tuple[str, float]]:
    """``{name: ">= 0.9"}`` as ``{name: (">=", 0.9)}``; names checked against ``known``."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError("must map metric names to thresholds", path=where, field=key)
    out: dict[str, tuple[str, float]] = {}
    for metric, text in raw.items():
        if known is not None and metric not in known:
            raise ConfigError(
                f"unknown metric {metric!r} (known: {', '.join(known)})", path=where, field=key
            )
        found = _THRESHOLD.match(str(text))
        if not found:
            raise ConfigError(
                f"threshold {text!r}: write it like '>= 0.9'", path=where, field=f"{key}.{metric}"
            )
        try:
            out[str(metric)] = (found.group(1), float(found.group(2)))
        except ValueError:
            raise ConfigError(
                f"threshold {text!r}: not a number", path=where, field=f"{key}.{metric}"
            ) from None
    return out


def evaluate(
    spec: GateSpec,
    metrics: dict[str, float],
    parity_passed: bool | None,
    current: tuple[str, dict[str, float]] | None,
    evaluation: EvaluationEvidence | None = None,
) -> list[GateResult]:
    """Every gate's result. ``current`` is (version, metrics) of the alias's holder;
    ``evaluation`` the version's newest ``evaluate()`` run (fairness and slice gates)."""
    results = []
    for metric, (op, threshold) in spec.metrics.items():
        gate = f"{metric} {op} {threshold:g}"
        if metric not in metrics:
            results.append(GateResult(gate, False, f"the source run has no metric {metric!r}"))
            continue
        value = metrics[metric]
        results.append(GateResult(gate, _OPS[op](value, threshold), f"{metric} = {value:.6g}"))
    if spec.parity:
        if parity_passed is None:
            results.append(GateResult("parity", False, "no parity check was recorded"))
        else:
            results.append(GateResult("parity", parity_passed, f"parity passed: {parity_passed}"))
    if spec.quantized:
        results.append(_quantized(metrics))
    results += [_fairness(m, op, t, evaluation) for m, (op, t) in spec.fairness.items()]
    results += [_slice(m, op, t, evaluation) for m, (op, t) in spec.slices.items()]
    if spec.beat_metric:
        metric = spec.beat_metric
        better = "higher" if spec.beat_mode == "max" else "lower"
        gate = f"beats current on {metric} ({better} is better)"
        if current is None:
            results.append(GateResult(gate, True, "no current holder"))
        elif metric not in metrics:
            results.append(GateResult(gate, False, f"the source run has no metric {metric!r}"))
        elif metric not in current[1]:
            results.append(
                GateResult(gate, True, f"current holder v{current[0]} has no {metric!r}")
            )
        else:
            mine, theirs = metrics[metric], current[1][metric]
            ok = mine > theirs if spec.beat_mode == "max" else mine < theirs
            evidence = f"{metric} = {mine:.6g} vs v{current[0]} {theirs:.6g}"
            results.append(GateResult(gate, ok, evidence))
    return results


def _quantized(metrics: dict[str, float]) -> GateResult:
    """The package run's quantization figures, read like any metric of the source run."""
    if _QUANTIZED_DIFF not in metrics:
        return GateResult(
            "quantized", False, "not quantized: package it with quantize=True and register that"
        )
    diff, budget = metrics[_QUANTIZED_DIFF], metrics.get(_QUANTIZED_BUDGET, float("nan"))
    evidence = f"quantized parity max abs diff {diff:.3g} (budget {budget:g})"
    if all(k in metrics for k in _SIZES):
        evidence += f", {metrics[_SIZES[0]]:.0f} of {metrics[_SIZES[1]]:.0f} bytes"
    return GateResult("quantized", bool(diff <= budget), evidence)


_NO_EVALUATION = (
    "no evaluation of this version was recorded: run jupyter_mlops.evaluate(model_uri, data, "
    "target=...) with slice columns (mlops.yaml models.<name>.slices, or slices=[...])"
)


def _fairness(
    metric: str, op: str, threshold: float, evaluation: EvaluationEvidence | None
) -> GateResult:
    gate = f"fairness {metric} {op} {threshold:g}"
    if evaluation is None:
        return GateResult(gate, False, _NO_EVALUATION)
    value = evaluation.metrics.get(f"fairness_{metric}")
    if value is None:
        return GateResult(
            gate,
            False,
            f"evaluation run {evaluation.run_id} computed no {metric}: it had no slice columns "
            "(mlops.yaml models.<name>.slices, or slices=[...]) or the model is no classifier",
        )
    return GateResult(
        gate,
        _OPS[op](value, threshold),
        f"{metric} = {value:.6g} (evaluation run {evaluation.run_id})",
    )


def _slice(
    metric: str, op: str, threshold: float, evaluation: EvaluationEvidence | None
) -> GateResult:
    """Every slice must pass: the lowest against ``>=``/``>``, the highest against ``<=``/``<``."""
    gate = f"every slice {metric} {op} {threshold:g}"
    if evaluation is None:
        return GateResult(gate, False, _NO_EVALUATION)
    ends = ["min"] if op in (">=", ">") else ["max"] if op in ("<=", "<") else ["min", "max"]
    checked = []
    for end in ends:
        value = evaluation.metrics.get(f"slice_{end}_{metric}")
        if value is None:
            return GateResult(
                gate,
                False,
                f"evaluation run {evaluation.run_id} computed no per-slice {metric}: it had no "
                "slice columns (mlops.yaml models.<name>.slices, or slices=[...]) or "
                f"{metric} is not a metric of its task",
            )
        found = evaluation.slices.get(metric, {}).get(end) or {}
        where = f"slice {found['column']}={found['group']}" if found else f"{end} slice"
        rows = f", {found['count']} rows" if found else ""
        checked.append((_OPS[op](value, threshold), f"{where}: {metric} = {value:.6g}{rows}"))
    passed = all(ok for ok, _ in checked)
    worst = next((text for ok, text in checked if not ok), checked[0][1])
    label = "worst " if len(ends) == 1 else ""
    return GateResult(gate, passed, f"{label}{worst} (evaluation run {evaluation.run_id})")
