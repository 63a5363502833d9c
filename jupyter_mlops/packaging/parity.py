"""Parity: torch and ONNX Runtime must agree on the example and on perturbed batches of
other sizes (so the dynamic batch axis is exercised too)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import ParityError
from .export import require

#: batch sizes checked besides the example's own
BATCH_SIZES = (1, 3, 17)


@dataclass
class ParityReport:
    """How far ONNX Runtime is from torch."""

    max_abs_diff: float
    max_rel_diff: float
    tolerance: float
    batch_sizes: list[int] = field(default_factory=list)
    #: the sizes each dynamic axis beyond the batch was checked at, by the axis's name
    axis_sizes: dict[str, list[int]] = field(default_factory=dict)
    #: what else the checked batches held (perturbed categories, missing values)
    checked: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.max_abs_diff <= self.tolerance

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


def _batches(inputs: tuple[Any, ...], seed: int) -> list[tuple[Any, ...]]:
    """The example itself, then rows resampled from it with a little noise on floats."""
    torch = require("torch", "torch")
    gen = torch.Generator().manual_seed(seed)
    out = [inputs]
    rows = inputs[0].shape[0]
    for size in BATCH_SIZES:
        idx = torch.randint(0, rows, (size,), generator=gen)
        batch = []
        for t in inputs:
            picked = t[idx]
            if picked.is_floating_point():
                scale = t.float().std().clamp(min=1e-3) * 0.1
                picked = picked + (torch.randn(picked.shape, generator=gen) * scale).to(t.dtype)
            batch.append(picked)
        out.append(tuple(batch))
    return out


def _flat(outputs: Any) -> list[Any]:
    if isinstance(outputs, (tuple, list)):
        return [o for item in outputs for o in _flat(item)]
    return [outputs]


def check_parity(
    model: Any,
    onnx_path: Path,
    inputs: tuple[Any, ...],
    input_names: list[str],
    tolerance: float,
    seed: int = 0,
    *,
    others: list[tuple[Any, ...]] | None = None,
    axes: list[dict[int, str]] | None = None,
) -> ParityReport:
    """Compare on every batch; raise ``ParityError`` with the numbers when above tolerance.

    ``others`` are further examples (other lengths along the dynamic ``axes``), each checked
    as the example is: itself and batches resampled from it.
    """
    torch = require("torch", "torch")
    ort = require("onnxruntime", "torch")
    import numpy as np

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    max_abs = 0.0
    max_rel = 0.0
    sizes = []
    batches = [b for example in [inputs, *(others or [])] for b in _batches(example, seed)]
    axis_sizes: dict[str, list[int]] = {}
    for example in [inputs, *(others or [])]:
        for tensor, named in zip(example, axes or [], strict=False):
            for axis, dim in named.items():
                seen = axis_sizes.setdefault(dim, [])
                if axis and int(tensor.shape[axis]) not in seen:
                    seen.append(int(tensor.shape[axis]))
    for batch in batches:
        sizes.append(int(batch[0].shape[0]))
        with torch.no_grad():
            expected = [t.detach().numpy() for t in _flat(model(*batch))]
        got = session.run(None, {n: t.numpy() for n, t in zip(input_names, batch)})
        for want, have in zip(expected, got):
            diff = np.abs(want.astype(np.float64) - np.asarray(have, dtype=np.float64))
            if diff.size:
                max_abs = max(max_abs, float(diff.max()))
                denom = np.maximum(np.abs(want.astype(np.float64)), 1e-6)
                max_rel = max(max_rel, float((diff / denom).max()))
    report = ParityReport(
        max_abs, max_rel, tolerance, sizes, {k: v for k, v in axis_sizes.items() if v}
    )
    if not report.passed:
        raise ParityError(
            f"ONNX Runtime and torch disagree: max absolute difference {max_abs:.3g} > "
            f"tolerance {tolerance:g} (max relative {max_rel:.3g}; batch sizes {sizes})",
            max_abs,
            max_rel,
            tolerance,
        )
    return report
