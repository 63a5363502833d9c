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
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from ..exceptions import ConfigError

_THRESHOLD = re.compile(r"^\s*(>=|<=|==|>|<)\s*(-?[0-9.eE+-]+)\s*$")
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "==": operator.eq,
}
_KEYS = {"metrics", "parity", "quantized", "beat_current"}
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

    @property
    def empty(self) -> bool:
        return (
            not self.metrics and not self.parity and not self.quantized and self.beat_metric is None
        )


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
    metrics: dict[str, tuple[str, float]] = {}
    raw_metrics = raw.get("metrics") or {}
    if not isinstance(raw_metrics, dict):
        raise ConfigError("must map metric names to thresholds", path=where, field="metrics")
    for metric, text in raw_metrics.items():
        found = _THRESHOLD.match(str(text))
        if not found:
            raise ConfigError(
                f"threshold {text!r}: write it like '>= 0.9'", path=where, field=f"metrics.{metric}"
            )
        try:
            metrics[str(metric)] = (found.group(1), float(found.group(2)))
        except ValueError:
            raise ConfigError(
                f"threshold {text!r}: not a number", path=where, field=f"metrics.{metric}"
            ) from None
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
        metrics=metrics, parity=parity, quantized=quantized, beat_metric=beat, beat_mode=mode
    )


def evaluate(
    spec: GateSpec,
    metrics: dict[str, float],
    parity_passed: bool | None,
    current: tuple[str, dict[str, float]] | None,
) -> list[GateResult]:
    """Every gate's result. ``current`` is (version, metrics) of the alias's holder."""
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
