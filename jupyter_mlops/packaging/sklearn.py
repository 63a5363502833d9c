"""scikit-learn estimators -> ONNX through skl2onnx, with the same parity check as torch.

A numeric array becomes one float input named ``input``; a DataFrame (one input per column)
is ``tables.py``'s. Both share the converter check, the options and the comparison here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import ExportError, PackagingError, ParityError, UnsupportedStepError
from .export import require
from .parity import BATCH_SIZES, ParityReport


def is_estimator(model: Any) -> bool:
    """A scikit-learn estimator, or one of XGBoost's or LightGBM's scikit-learn estimators."""
    from .boosting import library

    from_sklearn = type(model).__module__.startswith("sklearn")
    return (from_sklearn or library(model) is not None) and hasattr(model, "predict")


def steps(model: Any, path: list[str]) -> Iterator[tuple[list[str], Any]]:
    """Every estimator of a (nested) pipeline with the names leading to it."""
    yield path, model
    children: list[tuple[str, Any]] = []
    if hasattr(model, "steps"):  # Pipeline
        children = [(n, s) for n, s in model.steps]
    elif hasattr(model, "transformers_"):  # fitted ColumnTransformer
        children = [(n, t) for n, t, _ in model.transformers_]
    elif hasattr(model, "transformer_list"):  # FeatureUnion
        children = list(model.transformer_list)
    for name, child in children:
        if child is None or isinstance(child, str):  # "drop", "passthrough"
            continue
        yield from steps(child, [*path, name])


def check_convertible(model: Any) -> None:
    """Name the first step skl2onnx has no converter for, before it fails deep inside."""
    skl2onnx = require("skl2onnx", "sklearn")
    for path, step in steps(model, []):
        cls = type(step)
        where = " > ".join(path) or "the model"
        label = f"{cls.__module__}.{cls.__qualname__}"
        try:
            skl2onnx.get_model_alias(cls)
        except RuntimeError:
            raise UnsupportedStepError(
                f"step {where!r} is a {label}, which skl2onnx cannot convert to ONNX: use a "
                "transformer skl2onnx supports, or register a converter for "
                f"{cls.__qualname__} with skl2onnx.update_registered_converter() first",
                where,
                label,
            ) from None
        if cls.__name__ == "FunctionTransformer" and getattr(step, "func", None) is not None:
            func = getattr(step.func, "__name__", repr(step.func))
            raise UnsupportedStepError(
                f"step {where!r} is a FunctionTransformer of {func}: skl2onnx converts only "
                "FunctionTransformer(func=None); use a supported transformer (for example "
                "PowerTransformer) or write a transformer class and register its converter with "
                "skl2onnx.update_registered_converter()",
                where,
                label,
            )


def final_estimator(model: Any) -> Any:
    while hasattr(model, "steps"):
        model = model.steps[-1][1]
    return model


def convert(model: Any, initial_types: list[tuple[str, Any]]) -> Any:
    """skl2onnx with probabilities as a plain [batch, classes] tensor (no ZipMap)."""
    skl2onnx = require("skl2onnx", "sklearn")
    from . import boosting

    boosted = [s for _, s in steps(model, []) if boosting.library(s)]
    target_opset = None
    if boosted:
        # every boosting estimator's name starts with XGB or LGBM: "an" reads right for all
        boosting.register_converters(
            {str(boosting.library(s)) for s in boosted}, f"an {type(boosted[0]).__name__}"
        )
        model = boosting.prepared(model, [name for name, _ in initial_types])
        target_opset = {
            "": skl2onnx.get_latest_tested_opset_version(),
            "ai.onnx.ml": boosting.ML_OPSET,
        }
    check_convertible(model)
    last = final_estimator(model)
    # the option belongs to the classifier itself, not to a pipeline around it
    options = {id(last): {"zipmap": False}} if hasattr(last, "predict_proba") else None
    try:
        return skl2onnx.convert_sklearn(
            model, initial_types=initial_types, options=options, target_opset=target_opset
        )
    except Exception as err:
        raise ExportError(f"ONNX export failed: {type(err).__name__}: {err}") from None


def save_checked(proto: Any, path: Path) -> None:
    onnx = require("onnx", "sklearn")
    path.write_bytes(proto.SerializeToString())
    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as err:
        raise ExportError(f"the converted model fails onnx.checker: {err}") from None


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
    require("skl2onnx", "sklearn")
    from skl2onnx.common.data_types import FloatTensorType

    matrix = _as_matrix(example)
    try:
        model.predict(matrix[:1])
    except Exception as err:
        raise PackagingError(
            f"the estimator does not accept the example of shape {matrix.shape}: "
            f"{type(err).__name__}: {err}"
        ) from None
    proto = convert(model, [("input", FloatTensorType([None, matrix.shape[1]]))])
    save_checked(proto, path)
    return proto, matrix


def difference(model: Any, got: dict[str, Any], data: Any) -> tuple[float, float]:
    """Max absolute and relative difference: probabilities for a classifier, else predictions."""
    import numpy as np

    rows = len(data)
    if hasattr(model, "predict_proba") and "probabilities" in got:
        want, have = model.predict_proba(data), got["probabilities"]
    else:
        want, have = model.predict(data), next(iter(got.values()))
    want = np.asarray(want, np.float64).reshape(rows, -1)
    diff = np.abs(want - np.asarray(have, np.float64).reshape(rows, -1))
    if not diff.size:
        return 0.0, 0.0
    return float(diff.max()), float((diff / np.maximum(np.abs(want), 1e-6)).max())


def parity_report(
    max_abs: float, max_rel: float, tolerance: float, sizes: list[int], checked: list[str]
) -> ParityReport:
    report = ParityReport(max_abs, max_rel, tolerance, sizes, checked=checked)
    if not report.passed:
        raise ParityError(
            f"ONNX Runtime and scikit-learn disagree: max absolute difference {max_abs:.3g} > "
            f"tolerance {tolerance:g} (max relative {max_rel:.3g})",
            max_abs,
            max_rel,
            tolerance,
        )
    return report


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
        diff_abs, diff_rel = difference(model, got, batch)
        max_abs, max_rel = max(max_abs, diff_abs), max(max_rel, diff_rel)
    return parity_report(max_abs, max_rel, tolerance, [len(b) for b in batches], [])
