"""scikit-learn estimators -> ONNX through skl2onnx, with the same parity check as torch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import ExportError, PackagingError, ParityError
from .export import require
from .parity import BATCH_SIZES, ParityReport


def is_estimator(model: Any) -> bool:
    return type(model).__module__.startswith("sklearn") and hasattr(model, "predict")


def _as_matrix(example: Any) -> Any:
    import numpy as np

    try:
        array = np.asarray(example, dtype=np.float32)
    except (TypeError, ValueError):
        raise PackagingError("the example must be a numeric table (rows x features)") from None
    if array.ndim != 2:
        raise PackagingError(f"the example must be 2-D (rows x features), got shape {array.shape}")
    return array


def export_sklearn(model: Any, example: Any, path: Path) -> tuple[Any, Any]:
    """Convert, save, check; return (ONNX model, example as float32 matrix)."""
    skl2onnx = require("skl2onnx", "sklearn")
    from skl2onnx.common.data_types import FloatTensorType

    onnx = require("onnx", "sklearn")
    matrix = _as_matrix(example)
    try:
        model.predict(matrix[:1])
    except Exception as err:
        raise PackagingError(
            f"the estimator does not accept the example of shape {matrix.shape}: "
            f"{type(err).__name__}: {err}"
        ) from None
    options = {id(model): {"zipmap": False}} if hasattr(model, "predict_proba") else None
    try:
        proto = skl2onnx.convert_sklearn(
            model,
            initial_types=[("input", FloatTensorType([None, matrix.shape[1]]))],
            options=options,
        )
    except Exception as err:
        raise ExportError(f"ONNX export failed: {type(err).__name__}: {err}") from None
    path.write_bytes(proto.SerializeToString())
    onnx.checker.check_model(proto, full_check=True)
    return proto, matrix


def check_sklearn_parity(model: Any, path: Path, matrix: Any, tolerance: float) -> ParityReport:
    """Probabilities (or predictions) of scikit-learn and onnxruntime on several batches."""
    import numpy as np

    ort = require("onnxruntime", "sklearn")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    rng = np.random.default_rng(0)
    scale = matrix.std(axis=0, keepdims=True).clip(min=1e-3) * 0.1
    batches = [matrix] + [
        (
            matrix[rng.integers(0, len(matrix), size)]
            + rng.normal(0, 1, (size, matrix.shape[1])) * scale
        ).astype(np.float32)
        for size in BATCH_SIZES
    ]
    max_abs = max_rel = 0.0
    for batch in batches:
        got = dict(zip(names, session.run(None, {"input": batch}), strict=True))
        if hasattr(model, "predict_proba") and "probabilities" in got:
            want, have = model.predict_proba(batch), got["probabilities"]
        else:
            want, have = model.predict(batch), next(iter(got.values()))
        diff = np.abs(
            np.asarray(want, np.float64).reshape(len(batch), -1)
            - np.asarray(have, np.float64).reshape(len(batch), -1)
        )
        max_abs = max(max_abs, float(diff.max()))
        denom = np.maximum(np.abs(np.asarray(want, np.float64).reshape(len(batch), -1)), 1e-6)
        max_rel = max(max_rel, float((diff / denom).max()))
    report = ParityReport(max_abs, max_rel, tolerance, [len(b) for b in batches])
    if not report.passed:
        raise ParityError(
            f"ONNX Runtime and scikit-learn disagree: max absolute difference {max_abs:.3g} > "
            f"tolerance {tolerance:g} (max relative {max_rel:.3g})",
            max_abs,
            max_rel,
            tolerance,
        )
    return report
