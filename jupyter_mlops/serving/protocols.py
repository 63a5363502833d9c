"""MLflow's scoring protocol (``POST /invocations``), answered as ``mlflow models serve`` does.

Bodies: ``inputs`` / ``instances`` (tensors) and ``dataframe_split`` / ``dataframe_records``
(JSON), or a CSV or Parquet table. Tensor inputs answer ``{"predictions": {output: [...]}}``;
a table answers one record per element of the flattened outputs, as MLflow's ONNX flavour
does (under a tensor signature MLflow makes the table that tensor first, and so do we).
Statuses, error codes and messages are MLflow's; where MLflow fails with a 500 or writes
invalid JSON we answer a 4xx or valid JSON instead (README, "Deploy").
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import columns
from .jsonio import loads, tensor_list
from .model import RequestError, ServedVersion
from .zipmap import as_maps

#: in a fixed order: MLflow prints a set, so its order changes from one process to the next
_FIELDS = "{'dataframe_split', 'instances', 'dataframe_records', 'inputs'}"
_KEYS = ("dataframe_split", "instances", "dataframe_records", "inputs")
REQUIRED = f"The input must be a JSON dictionary with exactly one of the input fields {_FIELDS}"
CHANGE_INFO = (
    "IMPORTANT: The MLflow Model scoring protocol has changed in MLflow version 2.0. If you are"
    " seeing this error, you are likely using an outdated scoring request format. To resolve the"
    " error, either update your request format or adjust your MLflow Model's requirements file to"
    " specify an older version of MLflow (for example, change the 'mlflow' requirement specifier"
    " to 'mlflow==1.30.0'). If you are making a request using the MLflow client"
    " (e.g. via `mlflow.pyfunc.spark_udf()`), upgrade your MLflow client to a version >= 2.0 in"
    " order to use the new request format. For more information about the updated MLflow"
    " Model scoring protocol in MLflow 2.0, see"
    " https://mlflow.org/docs/latest/models.html#deploy-mlflow-models."
)
EVALUATION_FAILED = (
    "Encountered an unexpected error while evaluating the model. Verify that the serialized"
    " input Dataframe is compatible with the model for inference."
)
CONTENT_TYPES = ["text/csv", "application/json", "application/vnd.apache.parquet"]
#: how much of a body an error message quotes back (MLflow quotes all of it)
_QUOTE = 1000


class PlainError(Exception):
    """An answer MLflow gives as ``text/plain`` (the content-type refusals)."""

    def __init__(self, status: int, text: str):
        super().__init__(text)
        self.status = status
        self.text = text
        self.request_id: str | None = None


def invalid(message: str) -> RequestError:
    return RequestError(400, f"Invalid input. {message}")


def media_type(header: str | None) -> str:
    """The body's media type; ``PlainError`` 415 for what MLflow refuses."""
    if header is None:
        return "application/json"  # MLflow answers 500 here; a missing type means JSON to us
    mime, *pairs = [part.strip() for part in header.split(";")]
    params = {key: value for key, _, value in (pair.partition("=") for pair in pairs)}
    if params.get("charset", "utf-8").lower() != "utf-8":
        raise PlainError(415, "The scoring server only supports UTF-8")
    unexpected = set(params).difference({"charset"})
    if unexpected:
        raise PlainError(
            415, f"Unrecognized content type parameters: {', '.join(unexpected)}. {CHANGE_INFO}"
        )
    if mime not in CONTENT_TYPES:
        raise PlainError(
            415,
            "This predictor only supports the following content types:"
            f" Types: {CONTENT_TYPES}. Got '{header}'.",
        )
    return mime


@dataclass
class Parsed:
    #: input name -> array-like
    arrays: dict[str, Any]
    #: a table in: MLflow answers records
    frame: bool
    #: the declared context columns (each one value per row, None where not sent)
    context: dict[str, Any] = field(default_factory=dict)


def parse(raw: bytes, mime: str, served: ServedVersion) -> Parsed:
    if mime == "text/csv":
        return _csv(raw, served)
    if mime == "application/vnd.apache.parquet":
        return _parquet(raw, served)
    try:
        body = loads(raw)
    except RecursionError:
        raise invalid("the body is nested too deeply to be a tensor") from None
    except ValueError as err:  # UnicodeDecodeError is one
        quoted = raw if len(raw) <= _QUOTE else raw[:_QUOTE] + b"..."
        raise invalid(
            f"Ensure that input is a valid JSON formatted string. Error: '{err!r}'\n"
            f"Input: \n{quoted!r}\n"
        ) from None
    if isinstance(body, list):
        raise invalid(f"{REQUIRED}. Received a list.")
    if not isinstance(body, dict):
        raise invalid(f"{REQUIRED}. Received unexpected input type '{type(body)}.")
    present = [k for k in body if k in _KEYS]
    if len(present) != 1:
        raise RequestError(
            400, f"{REQUIRED}. Received dictionary with input fields: {present}. {CHANGE_INFO}"
        )
    key = present[0]
    value = body[key]
    if served.columns:
        return _columns(value, key, served)
    if key in ("inputs", "instances"):
        return Parsed(_tensors(value, key, served), frame=False)
    # under a tensor signature MLflow turns the table into that tensor before predicting
    return _table(_frame(value, key), served)


def _tensors(value: Any, key: str, served: ServedVersion) -> dict[str, Any]:
    if key == "instances" and isinstance(value, list) and value and isinstance(value[0], dict):
        columns: dict[str, list[Any]] = {}
        for row in value:
            if not isinstance(row, dict):
                raise invalid("instances: every row must be an object when the first one is")
            for name, v in row.items():
                columns.setdefault(name, []).append(v)
        return columns
    if isinstance(value, dict) and served.signature is False:
        raise invalid(
            "Failed to parse input data. This model contains an un-named  model signature "
            "which expects a single n-dimensional array or a single value as input, however, "
            f"an input of type {type(value)} was found."
        )
    if isinstance(value, dict):
        names = [s.name for s in served.inputs]
        if set(value) != set(names):
            raise RequestError(
                400, f"{EVALUATION_FAILED} The model's inputs are {names}, got {sorted(value)}."
            )
        return value
    if len(served.inputs) != 1:
        names = [s.name for s in served.inputs]
        raise RequestError(
            400, f"{EVALUATION_FAILED} This model has inputs {names}: send an object of them."
        )
    try:  # as MLflow does, so a ragged list gets numpy's own words
        array = np.asarray(value)
    except (ValueError, TypeError, OverflowError, RecursionError) as err:
        raise invalid(str(err)) from None
    return {served.inputs[0].name: array}


def _columns(value: Any, key: str, served: ServedVersion) -> Parsed:
    """A column model's request: a table, records, or (``inputs``) an object of columns."""
    context = served.context
    if key in ("dataframe_split", "dataframe_records"):
        return _table(_frame(value, key), served)
    if isinstance(value, dict) and key == "inputs":
        arrays = columns.from_columns(value, served.inputs, context)
        rows = len(next(iter(arrays.values()))) if arrays else 0
        return Parsed(arrays, True, columns.context_of_columns(value, context, rows))
    if isinstance(value, list) and all(isinstance(row, dict) for row in value):
        arrays = columns.from_records(value, served.inputs, context)
        return Parsed(arrays, True, columns.context_of_records(value, context))
    if isinstance(value, list) and value and isinstance(value[0], list):
        # rows without names: what MLflow says of them (their positions are no columns)
        columns.from_records([dict(enumerate(value[0]))], served.inputs)
    raise invalid(
        f"{key}: this model takes the columns {[s.name for s in served.inputs]}: send rows as "
        f"objects ([{{column: value}}, ...]){' or an object of columns' * (key == 'inputs')}"
    )


def _frame(value: Any, key: str) -> Any:
    import pandas as pd

    if key == "dataframe_records":
        if not isinstance(value, list):
            kind = "dictionary" if isinstance(value, dict) else f"type {type(value)}"
            raise invalid(f"Dataframe records format must be a list of records. Got {kind}.")
        try:
            return pd.DataFrame(data=value)
        except Exception as err:  # pandas raises many types for bad tables
            raise invalid(
                "Provided dataframe_records field is not a valid dataframe representation in "
                f"'records' format. Error: '{err}'"
            ) from None
    if not isinstance(value, dict):
        kind = "list" if isinstance(value, list) else f"type {type(value)}"
        raise invalid(f"Dataframe split format must be a dictionary. Got {kind}.")
    keys = set(value)
    if "data" not in keys or keys.difference({"columns", "data", "index"}):
        raise invalid(
            "Dataframe split format must have 'data' field and optionally 'columns' "
            f"and 'index' fields. Got {keys}.'"
        )
    try:
        return pd.DataFrame(index=value.get("index"), columns=value.get("columns"),
                            data=value["data"])  # fmt: skip
    except Exception as err:  # pandas raises many types for bad tables
        raise invalid(
            "Provided dataframe_split field is not a valid dataframe representation in "
            f"'split' format. Error: '{err}'"
        ) from None


def _csv(raw: bytes, served: ServedVersion) -> Parsed:
    import pandas as pd

    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise invalid(
            f"Ensure that input is a valid UTF-8 encoded string. Error: '{err!r}'"
        ) from None
    try:
        frame = pd.read_csv(io.StringIO(text))
    except Exception as err:  # pandas raises many types for bad CSV
        raise RequestError(
            400,
            "Failed to parse input as a Pandas DataFrame. Ensure that the input is a valid "
            "CSV-formatted Pandas DataFrame produced using the `pandas.DataFrame.to_csv()` "
            f"method. Error: '{err}'",
        ) from None
    return _table(frame, served)


def _parquet(raw: bytes, served: ServedVersion) -> Parsed:
    import pandas as pd

    try:
        frame = pd.read_parquet(io.BytesIO(raw))
    except Exception as err:  # pyarrow raises many types for bad files
        raise RequestError(
            400,
            "Failed to parse input as a Pandas DataFrame. Ensure that the input is a valid "
            "Parquet Pandas DataFrame produced using the `pandas.DataFrame.to_parquet()` "
            f"method. Error: '{err}'",
        ) from None
    return _table(frame, served)


def _table(frame: Any, served: ServedVersion) -> Parsed:
    """A table's inputs and its context columns (captured, not fed to the model)."""
    if served.columns:
        arrays = columns.from_frame(frame, served.inputs, served.context)
    else:
        kept = [c for c in frame.columns if str(c) not in served.context]
        arrays = _tensor_table(frame[kept] if served.context else frame, served)
    context = columns.context_of_frame(frame, served.context) if served.context else {}
    return Parsed(arrays, served.columns or served.signature is None, context)


def _tensor_table(frame: Any, served: ServedVersion) -> dict[str, Any]:
    """MLflow's ONNX flavour: one input takes the whole table, several take a column each."""
    if len(served.inputs) == 1:
        values = frame.to_numpy()
        if values.dtype == object:
            try:  # a table of numbers with a missing cell
                values = values.astype(np.float64)
            except (TypeError, ValueError):
                raise RequestError(
                    400, f"{EVALUATION_FAILED} Its cells are not all numbers."
                ) from None
        return {served.inputs[0].name: values}
    missing = [s.name for s in served.inputs if s.name not in frame.columns]
    if missing:
        raise RequestError(400, f"{EVALUATION_FAILED} The table has no column {missing[0]!r}.")
    return {s.name: frame[s.name].to_numpy() for s in served.inputs}


def response(
    outputs: dict[str, np.ndarray],
    frame: bool,
    class_labels: dict[str, list[Any]] | None = None,
    by_row: bool = False,
) -> dict[str, Any]:
    """MLflow's answer; an output in ``class_labels`` (a ZipMap's) is one map per row,
    ``{"<class label>": probability}``, as MLflow's ONNX flavour returns it. ``by_row`` (a
    column model): one record per row with each output's row, not its flattened values."""
    labels = class_labels or {}
    if by_row:
        return {"predictions": columns.records(outputs, labels)}

    def column(name: str, array: np.ndarray, flat: bool) -> Any:
        if name in labels:
            return as_maps(tensor_list(array), labels[name])
        return tensor_list(np.asarray(array).reshape(-1)) if flat else tensor_list(array)

    if not frame:
        return {"predictions": {name: column(name, a, False) for name, a in outputs.items()}}
    flat = {name: column(name, a, True) for name, a in outputs.items()}
    if len({len(c) for c in flat.values()}) > 1:
        sizes = {name: len(c) for name, c in flat.items()}
        raise RequestError(
            400, f"{EVALUATION_FAILED} Its outputs cannot be one table: sizes {sizes}. Send "
            "'inputs' to get each output whole.",
        )  # fmt: skip
    rows = len(next(iter(flat.values()))) if flat else 0
    return {"predictions": [{n: flat[n][i] for n in flat} for i in range(rows)]}


def error_body(err: RequestError) -> dict[str, Any]:
    """MLflow's error JSON: its code, message and the SQLSTATE fields MLflow 3 adds."""
    if err.status == 400 and err.code == columns.SCHEMA_ERROR:
        return {"error_code": "INVALID_PARAMETER_VALUE", "message": err.message,
                "sqlstate": "KAM01", "error_class": columns.SCHEMA_ERROR}  # fmt: skip
    if err.status == 400:
        return {"error_code": "BAD_REQUEST", "message": err.message, "sqlstate": "KAM00",
                "error_class": "INVALID_PARAMETER_VALUE"}  # fmt: skip
    return {"error_code": err.code, "message": err.message}
