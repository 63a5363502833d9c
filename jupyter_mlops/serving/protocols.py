"""Request bodies of the two protocols we speak, to arrays and back.

- MLflow's scoring protocol (``POST /invocations``): ``inputs``, ``instances``,
  ``dataframe_split``, ``dataframe_records``; answers ``{"predictions": {output: [...]}}``
  exactly as ``mlflow models serve`` does for an ONNX model.
- The Open Inference Protocol (KServe v2): ``{"inputs": [{"name", "shape", "datatype",
  "data"}]}``; answers ``{"model_name", "model_version", "outputs": [...]}``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .model import V2_TYPES, RequestError, ServedVersion

_MLFLOW_KEYS = ("inputs", "instances", "dataframe_split", "dataframe_records")
_V2_TO_NUMPY = {v: k for k, v in V2_TYPES.items()}


def _single(served: ServedVersion, value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if len(served.inputs) != 1:
        raise RequestError(
            400, f"this model has inputs {[i.name for i in served.inputs]}: name them"
        )
    return {served.inputs[0].name: value}


def mlflow_inputs(body: Any, served: ServedVersion) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise RequestError(400, "the body must be a JSON object")
    present = [k for k in _MLFLOW_KEYS if k in body]
    if len(present) != 1:
        raise RequestError(
            400,
            "The input must be a JSON dictionary with exactly one of the input fields "
            f"{set(_MLFLOW_KEYS)}. Received dictionary with input fields: {sorted(body)}.",
        )
    key = present[0]
    value = body[key]
    if key in ("inputs", "instances"):
        return _single(served, value)
    if key == "dataframe_split":
        if not isinstance(value, dict) or "data" not in value:
            raise RequestError(400, "dataframe_split needs 'columns' and 'data'")
        return _single(served, value["data"])
    if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
        raise RequestError(400, "dataframe_records must be a list of objects")
    columns = list(value[0]) if value else []
    return _single(served, [[row.get(c) for c in columns] for row in value])


def mlflow_response(outputs: dict[str, np.ndarray]) -> dict[str, Any]:
    return {"predictions": {name: array.tolist() for name, array in outputs.items()}}


def v2_inputs(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
        raise RequestError(400, "the body must be an object with an 'inputs' list")
    arrays: dict[str, Any] = {}
    for i, item in enumerate(body["inputs"]):
        if not isinstance(item, dict) or not {"name", "shape", "datatype", "data"} <= set(item):
            raise RequestError(400, f"inputs[{i}] needs name, shape, datatype and data")
        dtype = _V2_TO_NUMPY.get(str(item["datatype"]))
        if dtype is None:
            raise RequestError(400, f"inputs[{i}]: unknown datatype {item['datatype']!r}")
        try:
            array: np.ndarray = np.asarray(item["data"], dtype=dtype).reshape(item["shape"])
        except (ValueError, TypeError) as err:
            raise RequestError(400, f"inputs[{i}] ({item['name']}): {err}") from None
        arrays[str(item["name"])] = array
    return arrays


def v2_response(name: str, version: str, outputs: dict[str, np.ndarray]) -> dict[str, Any]:
    return {
        "model_name": name,
        "model_version": version,
        "outputs": [
            {
                "name": out,
                "shape": list(array.shape),
                "datatype": V2_TYPES.get(array.dtype.type, "FP32"),
                "data": array.ravel().tolist(),
            }
            for out, array in outputs.items()
        ],
    }


def v2_metadata(name: str, versions: list[str], served: ServedVersion) -> dict[str, Any]:
    return {
        "name": name,
        "versions": versions,
        "platform": "onnxruntime_onnx",
        "inputs": [
            {
                "name": s.name,
                "datatype": V2_TYPES.get(s.dtype, "FP32"),
                "shape": [-1 if d is None else d for d in s.shape],
            }
            for s in served.inputs
        ],
        "outputs": [
            {
                "name": o.name,
                "datatype": "FP32",
                "shape": [-1 if not isinstance(d, int) else d for d in o.shape],
            }
            for o in served.session.get_outputs()
        ],
    }
