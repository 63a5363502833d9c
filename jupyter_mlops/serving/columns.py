"""Column models: one ONNX input per table column, each ``[batch, 1]`` of its own type.

That is what skl2onnx makes of a scikit-learn pipeline with a ``ColumnTransformer`` (and
what ``package()`` logs for a DataFrame example, with a column signature). Requests name the
columns: a table (``dataframe_split``, ``dataframe_records``, CSV, Parquet), records
(``instances``, or ``inputs`` as a list of objects) or columns (``inputs`` as an object).
This module turns each into one tensor per input in the input's type, and refuses what does
not fit with a 400 that names the column (and the row).

MLflow's own server hands such a model each column as a 1-D array, which onnxruntime
refuses (rank 1 for a rank-2 input): ``mlflow models serve`` cannot answer these models.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from .jsonio import tensor_list
from .model import RequestError, TensorSpec
from .zipmap import as_maps

_KINDS = {"O": "strings", "U": "strings", "b": "true/false", "i": "integers", "u": "integers",
          "f": "numbers"}  # fmt: skip


def signature_inputs(onnx_path: Path) -> list[Any] | None:
    """The ``inputs`` of the MLflow signature in the ``MLmodel`` beside the ONNX file, as
    MLflow wrote them (a list of ``{"type", "name", ...}``); None without a readable one."""
    import yaml

    try:
        meta = yaml.safe_load((onnx_path.parent / "MLmodel").read_text(encoding="utf-8"))
        inputs = json.loads(meta["signature"]["inputs"])
    except (OSError, KeyError, TypeError, ValueError, yaml.YAMLError):
        return None
    return inputs if isinstance(inputs, list) else None


def signature_columns(onnx_path: Path) -> list[str] | None:
    """The column names of the MLflow signature beside the ONNX file (None: no column one)."""
    inputs = signature_inputs(onnx_path)
    if inputs is None or not all(
        isinstance(i, dict) and i.get("type") != "tensor" and "name" in i for i in inputs
    ):
        return None
    return [str(i["name"]) for i in inputs]


def _is_column(spec: TensorSpec) -> bool:
    return spec.dtype is not None and len(spec.shape) in (1, 2) and spec.shape[1:] in ([], [1])


def is_column_model(inputs: list[TensorSpec], onnx_path: Path) -> bool:
    """Every input is one column (``[batch, 1]`` or ``[batch]``), and either the signature
    names exactly these columns or, without a signature of columns, there are several."""
    if not inputs or not all(_is_column(s) for s in inputs):
        return False
    names = signature_columns(onnx_path)
    if names is not None:
        return set(names) == {s.name for s in inputs}
    from .model import tensor_signature

    return len(inputs) > 1 and tensor_signature(onnx_path) is None


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


#: what MLflow says when a column does not convert; the row and value that failed follow
_NOT_COMPATIBLE = "Invalid input. Data is not compatible with model signature."
#: the error code MLflow answers a missing column with (its schema enforcement's)
SCHEMA_ERROR = "SCHEMA_ENFORCEMENT_FAILED"


def _type_name(spec: TensorSpec) -> str:
    return "str" if spec.dtype is np.object_ else np.dtype(spec.dtype).name


def _column_error(spec: TensorSpec, detail: str) -> RequestError:
    return RequestError(
        400, f"{_NOT_COMPATIBLE} Failed to convert column {spec.name} to type "
        f"'{_type_name(spec)}': {detail}",
    )  # fmt: skip


def _refuse(spec: TensorSpec, row: int, value: Any) -> RequestError:
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    return _column_error(spec, f"it takes {_want(spec)} and row {row} is {shown}")


def _want(spec: TensorSpec) -> str:
    if spec.dtype is np.object_:
        return "strings"
    dtype = np.dtype(spec.dtype)
    return {"f": f"numbers ({dtype.name})", "b": "true/false"}.get(
        dtype.kind, f"integers ({dtype.name})"
    )


def column_tensor(spec: TensorSpec, values: np.ndarray) -> np.ndarray:
    """One column's values (1-D, any dtype) as the input's tensor; a 400 naming the column
    and the first row that does not fit. A missing float is NaN; a string or an integer
    column cannot be missing (its tensor has no null, and ``package()`` refuses one)."""
    kind = values.dtype.kind
    if spec.dtype is np.object_:
        out = _strings(spec, values) if len(values) else values.astype(object)
    else:
        out = _numbers(spec, values, np.dtype(spec.dtype), kind)
    return out.reshape(-1, 1) if len(spec.shape) == 2 else out.reshape(-1)


def _strings(spec: TensorSpec, values: np.ndarray) -> np.ndarray:
    if values.dtype.kind == "U":
        return values.astype(object)
    if values.dtype.kind == "f" and np.isnan(values).all():
        raise _column_error(spec, "row 0 is missing, and a string column cannot be")
    if values.dtype.kind != "O":
        raise _refuse(spec, 0, values[0].item())
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values.tolist()):
        if isinstance(v, str):
            out[i] = v
        elif _missing(v):
            # as package() refuses a missing string in the example: the model never saw one
            raise _column_error(spec, f"row {i} is missing, and a string column cannot be")
        else:
            raise _refuse(spec, i, v)
    return out


def _numbers(spec: TensorSpec, values: np.ndarray, want: np.dtype[Any], kind: str) -> np.ndarray:
    if kind == "O":
        values = _unbox(spec, values, want)
        kind = values.dtype.kind
    if want.kind == "b":
        if kind != "b" and len(values):
            raise _refuse(spec, 0, values[0].item())
        return values.astype(want)
    if kind not in "iuf":
        if len(values):
            raise _refuse(spec, 0, values[0].item())
        return values.astype(want)
    if want.kind == "f":
        with np.errstate(over="ignore"):  # beyond float32's range is inf, as MLflow casts
            return values.astype(want)
    if kind == "f":
        bad = ~np.isfinite(values) | (values != np.round(values))
        if bad.any():
            i = int(np.argmax(bad))
            value = values[i].item()
            if math.isnan(value):
                raise _column_error(spec, f"row {i} is missing, and an integer column cannot be")
            raise _refuse(spec, i, value)
    info = np.iinfo(want)
    if len(values) and (values.min() < info.min or values.max() > info.max):
        i = int(np.argmax((values < info.min) | (values > info.max)))
        raise _column_error(spec, f"row {i} is out of range")
    return values.astype(want)


def _unbox(spec: TensorSpec, values: np.ndarray, want: np.dtype[Any]) -> np.ndarray:
    """An object column (numbers with nulls, mixed types) as a numeric array, or a 400."""
    items = values.tolist()
    if want.kind == "b":
        for i, v in enumerate(items):
            if not isinstance(v, (bool, np.bool_)):
                raise _refuse(spec, i, v)
        return np.array(items, dtype=np.bool_)
    floats = np.empty(len(items), dtype=np.float64)
    for i, v in enumerate(items):
        if _missing(v):
            floats[i] = np.nan
        elif isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.number)):
            raise _refuse(spec, i, v)
        elif isinstance(v, int) and want.kind in "iu":
            info = np.iinfo(want)
            if not info.min <= v <= info.max:
                raise _column_error(spec, f"row {i} is out of range")
            floats[i] = v
        else:
            try:
                floats[i] = float(v)
            except OverflowError:  # an integer beyond any float
                raise _column_error(spec, f"row {i} is out of range") from None
    # exact above 2**53: the ints themselves when every value is one
    if want.kind in "iu" and all(isinstance(v, (int, np.integer)) for v in items):
        return np.array(items, dtype=want)
    return floats


def _check_names(
    served_inputs: list[TensorSpec], given: list[Any], context: tuple[str, ...] = ()
) -> None:
    """MLflow's words for missing columns; extra ones are refused too (MLflow drops them),
    so a misspelt optional feature is never served silently. Declared ``context`` columns
    are neither extra nor required."""
    names = [s.name for s in served_inputs]
    strings = [str(g) for g in given]
    if len(set(strings)) != len(strings):
        twice = next(s for s in strings if strings.count(s) > 1)
        raise RequestError(400, f"{_NOT_COMPATIBLE} Column {twice!r} is given twice.", SCHEMA_ERROR)
    missing = [n for n in names if n not in strings]
    extra = [g for g, s in zip(given, strings, strict=True) if s not in names and s not in context]
    if not missing and not extra:
        return
    if missing:
        text = f"Model is missing inputs {missing}."
        if extra:
            text += f" Note that there were extra inputs: {extra}."
    else:
        text = f"Model got unexpected inputs {extra}."
    raise RequestError(400, f"{text} The model takes the columns {names}.", SCHEMA_ERROR)


def from_frame(
    frame: Any, served_inputs: list[TensorSpec], context: tuple[str, ...] = ()
) -> dict[str, np.ndarray]:
    """A pandas table as one tensor per column input (its ``context`` columns left out)."""
    import pandas as pd

    _check_names(served_inputs, list(frame.columns), context)
    # by the label's text: a CSV or JSON column "0" and a Parquet column 0 are one name
    position = {str(label): i for i, label in enumerate(frame.columns)}
    out = {}
    for spec in served_inputs:
        series = frame.iloc[:, position[spec.name]]
        if isinstance(series.dtype, pd.api.extensions.ExtensionDtype):
            # nullable ints, categories, Arrow strings (Parquet): as plain Python values
            values = series.astype(object).where(series.notna(), None).to_numpy()
        else:
            values = series.to_numpy()
        out[spec.name] = column_tensor(spec, values)
    return out


def _values(spec: TensorSpec, value: Any) -> np.ndarray:
    """One column sent as a list (or a list of one-element lists, or a single value)."""
    if not isinstance(value, list):
        value = [value]
    flat = [v[0] if isinstance(v, list) and len(v) == 1 else v for v in value]
    for i, v in enumerate(flat):
        if isinstance(v, (list, dict)):
            raise _column_error(spec, f"row {i} is not a single value")
    out = np.empty(len(flat), dtype=object)
    out[:] = flat
    return out


def from_columns(
    value: dict[str, Any], served_inputs: list[TensorSpec], context: tuple[str, ...] = ()
) -> dict[str, np.ndarray]:
    """``{"inputs": {"city": [...], "age": [...]}}``: each key a column, each value its rows."""
    _check_names(served_inputs, list(value), context)
    out = {s.name: column_tensor(s, _values(s, value[s.name])) for s in served_inputs}
    sizes = {name: len(a) for name, a in out.items()}
    if len(set(sizes.values())) > 1:
        raise RequestError(400, f"the columns have different numbers of rows: {sizes}")
    return out


def from_records(
    rows: list[Any], served_inputs: list[TensorSpec], context: tuple[str, ...] = ()
) -> dict[str, np.ndarray]:
    """``[{"city": ..., "age": ...}, ...]``: a key a row leaves out is a missing value."""
    names = [s.name for s in served_inputs]
    seen: dict[str, None] = {}
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise RequestError(400, f"row {i} is not an object of columns {names}")
        seen.update(dict.fromkeys(row))
    extra = [k for k in seen if k not in names and k not in context]
    missing = [n for n in names if n not in seen]
    if extra or (missing and rows):
        _check_names(served_inputs, list(seen), context)
    columns = {n: [row.get(n) for row in rows] for n in names}
    return from_columns(columns, served_inputs)


# -- context columns: captured with the request, never fed to the model -------------------
def check_context(context: tuple[str, ...], inputs: list[TensorSpec], model: str) -> None:
    """A context column must not be one of the model's inputs (it would never reach it)."""
    clash = [c for c in context if c in {s.name for s in inputs}]
    if clash:
        raise ContextError(
            f"context column {clash[0]!r} of model {model!r} (models.{model}.context in "
            f"mlops.yaml) is also an input of the model: the model takes "
            f"{[s.name for s in inputs]}; a context column is captured, never fed to it, so "
            "remove it from models.<name>.context"
        )


class ContextError(ValueError):
    """Context columns declared for a model that cannot be served as declared."""


def context_values(name: str, values: Any, rows: int) -> np.ndarray:
    """One context column's values (a list, or one value for every row) as an object array
    of str, int, float, bool or None (a NaN is None); a 400 naming the column and row of a
    value of another type."""
    if not isinstance(values, (list, tuple, np.ndarray)):
        values = [values] * rows
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values.tolist() if isinstance(values, np.ndarray) else values):
        if isinstance(v, list) and len(v) == 1:
            v = v[0]  # a column of one-element rows, as ``inputs`` columns may be sent
        if isinstance(v, np.generic):
            v = v.item()
        if v is None or (isinstance(v, float) and math.isnan(v)):
            out[i] = None
        elif isinstance(v, (str, bool, int, float)):
            out[i] = v
        else:
            shown = repr(v) if len(repr(v)) <= 60 else repr(v)[:57] + "..."
            raise RequestError(
                400, f"context column {name!r}: row {i} is {shown} ({type(v).__name__}); a "
                "context value must be a string, a number, true/false or null",
            )  # fmt: skip
    if len(out) != rows:
        raise RequestError(
            400, f"context column {name!r} has {len(out)} rows and the inputs have {rows}"
        )
    return out


def _frame_values(series: Any) -> list[Any]:
    import pandas as pd

    if isinstance(series.dtype, pd.api.extensions.ExtensionDtype) or series.dtype == object:
        return list(series.astype(object).where(series.notna(), None))
    return list(series.to_numpy())


def context_of_frame(frame: Any, context: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The declared context columns of a table; one it lacks is all null."""
    position = {str(label): i for i, label in enumerate(frame.columns)}
    rows = len(frame)
    out = {}
    for name in context:
        if name in position:
            out[name] = context_values(name, _frame_values(frame.iloc[:, position[name]]), rows)
        else:
            out[name] = np.full(rows, None, dtype=object)
    return out


def context_of_columns(
    value: dict[str, Any], context: tuple[str, ...], rows: int
) -> dict[str, np.ndarray]:
    """``{"inputs": {column: [...]}}``'s context columns; one it lacks is all null."""
    return {
        name: context_values(name, value[name], rows)
        if name in value
        else np.full(rows, None, dtype=object)
        for name in context
    }


def context_of_records(rows: list[Any], context: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Records' context columns: a key a row leaves out is null."""
    return {
        name: context_values(name, [r.get(name) if isinstance(r, dict) else None for r in rows],
                             len(rows))
        for name in context
    }  # fmt: skip


def records(outputs: dict[str, np.ndarray], class_labels: dict[str, list[Any]]) -> list[Any]:
    """One record per row: each output's row, a single value unwrapped (``label``: 1,
    ``probabilities``: [0.2, 0.8]); a ZipMap's output one ``{class: p}`` map per row."""
    columns: dict[str, list[Any]] = {}
    for name, array in outputs.items():
        if name in class_labels:
            columns[name] = as_maps(tensor_list(array), class_labels[name])
            continue
        a = np.asarray(array)
        if a.ndim == 0:
            a = a.reshape(1)
        if a.ndim == 2 and a.shape[1] == 1:
            a = a[:, 0]
        columns[name] = tensor_list(a)
    sizes = {name: len(c) for name, c in columns.items()}
    if len(set(sizes.values())) > 1:
        raise RequestError(400, f"the model's outputs have different numbers of rows: {sizes}")
    n = next(iter(sizes.values()), 0)
    return [{name: columns[name][i] for name in columns} for i in range(n)]
