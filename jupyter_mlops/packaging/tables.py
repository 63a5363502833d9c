"""Mixed-type tables: a scikit-learn pipeline fitted on a DataFrame -> ONNX with one input
per column.

The contract the server and the monitors rely on: each column is an input named after it,
of shape ``[None, 1]``, typed ``float`` (float columns), ``int64`` (integer columns) or
``string`` (object, string and category columns). Parity compares scikit-learn on the
DataFrame itself with onnxruntime on those tensors, on the example and on perturbed rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import ColumnMismatchError, PackagingError
from .export import require
from .parity import BATCH_SIZES, ParityReport
from .sklearn import convert, difference, parity_report, save_checked

#: column kind -> MLflow ColSpec type for the column's own dtype
_FLOAT_SPECS = {"float32": "float", "float64": "double"}


def is_table(example: Any) -> bool:
    return type(example).__module__.startswith("pandas") and hasattr(example, "columns")


def fitted_on_columns(model: Any) -> bool:
    """Fitted on a DataFrame (scikit-learn kept its column names)."""
    return getattr(model, "feature_names_in_", None) is not None


def column_kind(name: str, series: Any) -> str:
    """``float``, ``int`` or ``string``: the tensor type the column becomes."""
    import pandas as pd

    dtype = series.dtype
    types = pd.api.types
    # an object column holds strings (or values str() turns into them)
    textual = types.is_string_dtype(dtype) or types.is_object_dtype(dtype)
    if isinstance(dtype, pd.CategoricalDtype) or textual:
        kind = "string"
    elif types.is_bool_dtype(dtype) or types.is_integer_dtype(dtype):
        kind = "int"
    elif types.is_float_dtype(dtype):
        kind = "float"
    else:
        raise PackagingError(
            f"column {name!r} has dtype {dtype}: ONNX inputs take numbers, strings and "
            "categories; convert it (e.g. a date to its year or a timestamp) before fitting"
        )
    if kind != "float" and series.isna().any():
        # a string or int64 tensor has no missing value; only floats carry NaN
        hint = "fill them (e.g. with 'missing')" if kind == "string" else "make it a float column"
        raise PackagingError(
            f"column {name!r} ({dtype}) has missing values, which an ONNX {kind} tensor "
            f"cannot hold: {hint} before fitting and packaging"
        )
    return kind


def columns_in_fitted_order(model: Any, frame: Any) -> Any:
    """The example's columns as the pipeline was fitted on; a mismatch names each column."""
    fitted = [str(c) for c in model.feature_names_in_]
    columns = [str(c) for c in frame.columns]
    doubled = sorted({c for c in columns if columns.count(c) > 1})
    if doubled:
        raise PackagingError(f"the example has the column(s) {doubled} more than once")
    missing = [c for c in fitted if c not in columns]
    extra = [c for c in columns if c not in fitted]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {missing}")
        if extra:
            parts.append(f"not fitted on {extra}")
        raise ColumnMismatchError(
            "the example's columns are not the ones the pipeline was fitted on: "
            f"{'; '.join(parts)} (fitted on {fitted}); pass a DataFrame with exactly those "
            "columns",
            missing,
            extra,
        )
    return frame[fitted]


def column_kinds(frame: Any) -> dict[str, str]:
    return {str(c): column_kind(str(c), frame[c]) for c in frame.columns}


def tensors(frame: Any, kinds: dict[str, str]) -> dict[str, Any]:
    """The onnxruntime feed: one ``[rows, 1]`` array per column."""
    import numpy as np

    feed = {}
    for name, kind in kinds.items():
        column = frame[name]
        if kind == "float":
            values = column.to_numpy(dtype=np.float32)
        elif kind == "int":
            values = column.to_numpy(dtype=np.int64)
        else:
            values = column.astype(str).to_numpy(dtype=object)
        feed[name] = values.reshape(-1, 1)
    return feed


def export_table(model: Any, frame: Any, path: Path) -> tuple[Any, Any, dict[str, str]]:
    """Convert, save, check; return (ONNX model, the example in fitted order, column kinds)."""
    require("skl2onnx", "sklearn")
    from skl2onnx.common.data_types import FloatTensorType, Int64TensorType, StringTensorType

    frame = columns_in_fitted_order(model, frame)
    kinds = column_kinds(frame)
    try:
        model.predict(frame.iloc[:1])
    except Exception as err:
        raise PackagingError(
            f"the pipeline does not accept the example: {type(err).__name__}: {err}"
        ) from None
    types = {"float": FloatTensorType, "int": Int64TensorType, "string": StringTensorType}
    proto = convert(model, [(name, types[kind]([None, 1])) for name, kind in kinds.items()])
    restore_input_names(proto, list(kinds))
    save_checked(proto, path)
    return proto, frame, kinds


def restore_input_names(proto: Any, columns: list[str]) -> None:
    """Name the graph's inputs after their columns again.

    skl2onnx makes each input name an identifier ("petal length" becomes "petal_length"),
    but callers, the signature and the model server feed a table by its column names; ONNX
    takes any string as a name. The inputs keep the order of ``initial_types``.
    """
    inputs = proto.graph.input
    renamed = {v.name: c for v, c in zip(inputs, columns, strict=True) if v.name != c}
    if not renamed:
        return
    for value in inputs:
        value.name = renamed.get(value.name, value.name)
    for node in proto.graph.node:
        for i, name in enumerate(node.input):
            if name in renamed:
                node.input[i] = renamed[name]


def perturbed(frame: Any, kinds: dict[str, str], seed: int = 0) -> list[tuple[str, Any]]:
    """Rows resampled from the example with noise on floats and categories resampled from
    those seen in it, at each of ``BATCH_SIZES``; then a batch with missing floats."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    out = []
    for size in (*BATCH_SIZES, BATCH_SIZES[-1]):
        rows = frame.iloc[rng.integers(0, len(frame), size)].reset_index(drop=True)
        for name, kind in kinds.items():
            column = frame[name]
            if kind == "float":
                scale = max(float(np.nan_to_num(column.std())), 1e-3) * 0.1
                noisy = rows[name].to_numpy(np.float64) + rng.normal(0, scale, size)
                rows[name] = noisy.astype(column.dtype)
            elif kind == "string":
                seen = column.dropna().unique()
                picked = seen[rng.integers(0, len(seen), size)]
                if isinstance(column.dtype, pd.CategoricalDtype):
                    picked = pd.Categorical(picked, dtype=column.dtype)
                rows[name] = picked
        out.append(("perturbed", rows))
    rows = out.pop()[1]
    floats = [n for n, k in kinds.items() if k == "float"]
    if floats:
        for name in floats:  # a quarter of each float column missing, at least one cell
            holes = rng.random(len(rows)) < 0.25
            holes[rng.integers(0, len(rows))] = True
            rows.loc[holes, name] = np.nan
        out.append(("missing", rows))
    return out


def check_table_parity(
    model: Any, path: Path, frame: Any, kinds: dict[str, str], tolerance: float
) -> ParityReport:
    """scikit-learn on the DataFrame against onnxruntime on its column tensors."""
    ort = require("onnxruntime", "sklearn")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    max_abs = max_rel = 0.0
    sizes = []
    checked = ["rows resampled with noise on float columns"]
    if "string" in kinds.values():
        checked.append("categories resampled from those in the example")
    for label, batch in [("example", frame), *perturbed(frame, kinds)]:
        if label == "missing":
            try:
                model.predict(batch)
            except ValueError:  # this pipeline does not take missing values: not a parity case
                continue
            missing = [n for n, k in kinds.items() if k == "float"]
            checked.append(f"missing values in {', '.join(missing)}")
        got = dict(zip(names, session.run(None, tensors(batch, kinds)), strict=True))
        diff_abs, diff_rel = difference(model, got, batch)
        max_abs, max_rel = max(max_abs, diff_abs), max(max_rel, diff_rel)
        sizes.append(len(batch))
    return parity_report(max_abs, max_rel, tolerance, sizes, checked)


def column_schema(frame: Any, kinds: dict[str, str]) -> Any:
    """The MLflow input schema: one named column each, typed as the user's column."""
    from mlflow.types import ColSpec, Schema, TensorSpec

    specs: list[ColSpec | TensorSpec] = []
    for name, kind in kinds.items():
        if kind == "float":
            spec = _FLOAT_SPECS.get(str(frame[name].dtype), "double")
        elif kind == "int":
            spec = "long"
        else:
            spec = "string"
        specs.append(ColSpec(spec, name))
    return Schema(specs)


def table_reference(reference: Any, frame: Any) -> Any:
    """A DataFrame as given (it must hold the model's columns); an array gets the example's
    column names and dtypes."""
    import numpy as np
    import pandas as pd

    if not is_table(reference):
        if type(reference).__module__.startswith("torch"):
            reference = reference.detach().cpu().numpy()
        array = np.asarray(reference)
        if array.ndim != 2 or array.shape[1] != len(frame.columns):
            raise PackagingError(
                f"reference sample of shape {array.shape} does not match the example's "
                f"{len(frame.columns)} columns {list(frame.columns)}: pass a DataFrame"
            )
        reference = pd.DataFrame(array, columns=frame.columns).astype(frame.dtypes.to_dict())
    missing = [c for c in frame.columns if c not in reference.columns]
    if missing:
        raise PackagingError(
            f"the reference sample lacks the model's column(s) {missing}: drift is compared "
            "per column, so give it every input column"
        )
    return reference
