"""The Open Inference Protocol (KServe v2, Triton) over HTTP, with binary tensor data.

A request is JSON, or (header ``Inference-Header-Content-Length: N``) N bytes of JSON then
the raw bytes of the inputs that say ``"parameters": {"binary_data_size": n}``, in order.
Outputs come back as JSON data, or as raw bytes after the JSON when the output asks
``binary_data`` or the request ``binary_data_output``. Errors are ``{"error": "..."}``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .jsonio import dumps, load_json, tensor_list
from .model import V2_TYPES, RequestError, ServedVersion, TensorSpec, check_shape, datatype_of
from .request_ids import check_request_id
from .zipmap import CLASS_LABELS

HEADER_LENGTH = "inference-header-content-length"
_NUMPY: dict[str, Any] = {v: k for k, v in V2_TYPES.items() if k not in (np.str_, np.bytes_)}


@dataclass
class InferRequest:
    id: str | None
    inputs: dict[str, np.ndarray]
    #: requested outputs (all when None) and whether each goes back as binary
    outputs: list[str] | None
    binary: dict[str, bool] = field(default_factory=dict)
    binary_default: bool = False
    #: the declared context columns sent as inputs (one value per row, None where not sent)
    context: dict[str, np.ndarray] = field(default_factory=dict)


def _object(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RequestError(400, f"{what} must be an object")
    return value


def _flag(params: dict[str, Any], key: str, what: str) -> bool:
    value = params.get(key, False)
    if not isinstance(value, bool):
        raise RequestError(400, f"{what}: parameter {key!r} must be true or false")
    return value


def _count(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise RequestError(400, f"{what} must be a non-negative integer, got {value!r}")
    return value


def parse_infer(
    raw: bytes, header_length: str | None, served: ServedVersion, model: str
) -> InferRequest:
    """The request as arrays checked against the served version's inputs and outputs."""
    if header_length is None:
        head, binary = raw, b""
    else:
        if not header_length.isdigit() or int(header_length) > len(raw):
            raise RequestError(
                400, f"Inference-Header-Content-Length {header_length!r} is not a length "
                f"within the body's {len(raw)} bytes",
            )  # fmt: skip
        head, binary = raw[: int(header_length)], raw[int(header_length) :]
    body = load_json(head, "the inference request")
    if not isinstance(body, dict):
        raise RequestError(400, "the inference request must be a JSON object")
    request_id = body.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise RequestError(400, "the request's 'id' must be a string")
    if request_id:  # it goes back in a header and into the capture
        check_request_id(request_id, "the request's 'id'")
    params = _object(body.get("parameters"), "the request's 'parameters'")
    items = body.get("inputs")
    if not isinstance(items, list):
        raise RequestError(400, "the inference request needs an 'inputs' list")
    specs = {s.name: s for s in served.inputs}
    arrays: dict[str, np.ndarray] = {}
    context: dict[str, np.ndarray] = {}
    offset = 0
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise RequestError(400, f"inputs[{i}] must be an object")
        name = item.get("name")
        if not isinstance(name, str):
            raise RequestError(400, f"inputs[{i}] needs a 'name' string")
        spec = specs.get(name)
        if spec is None and name in served.context:
            if name in context:
                raise RequestError(400, f"context input {name!r} is given twice")
            array, size = _tensor(item, _context_spec(item, name), binary, offset,
                                  header_length is not None)  # fmt: skip
            offset += size
            context[name] = array
            continue
        if spec is None:
            raise RequestError(
                400, f"unexpected inference input {name!r} for model {model!r}; "
                f"its inputs are {sorted(specs)}",
            )  # fmt: skip
        if name in arrays:
            raise RequestError(400, f"input {name!r} is given twice")
        array, size = _tensor(item, spec, binary, offset, header_length is not None)
        offset += size
        arrays[name] = array
    if len(arrays) != len(specs):
        missing = sorted(set(specs) - set(arrays))
        raise RequestError(
            400, f"expected {len(specs)} inputs but got {len(arrays)} inputs for model "
            f"{model!r}: missing {missing}",
        )  # fmt: skip
    if offset != len(binary):
        raise RequestError(
            400, f"the body has {len(binary)} bytes of binary data after its JSON header, but "
            f"the inputs' binary_data_size add up to {offset}",
        )  # fmt: skip
    request = InferRequest(
        request_id, arrays, None, binary_default=_flag(params, "binary_data_output", "request")
    )
    if served.context:
        rows = next(iter(arrays.values())).shape[0] if arrays else 0
        request.context = _context_columns(context, served.context, rows)
    _requested_outputs(body.get("outputs"), served, model, request)
    return request


def _tensor(
    item: dict[str, Any], spec: TensorSpec, binary: bytes, offset: int, has_header: bool
) -> tuple[np.ndarray, int]:
    name = spec.name
    datatype = item.get("datatype")
    if datatype != spec.datatype:
        raise RequestError(
            400, f"inference input {name!r} data-type is {datatype!r}, but the model expects "
            f"{spec.datatype!r}",
        )  # fmt: skip
    shape = item.get("shape")
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise RequestError(400, f"input {name!r}: 'shape' must be a list of non-negative integers")
    check_shape(spec, shape, "input")
    count = math.prod(shape)
    params = _object(item.get("parameters"), f"input {name!r}: 'parameters'")
    if "binary_data_size" in params:
        size = _count(params["binary_data_size"], f"input {name!r}: binary_data_size")
        if not has_header:
            raise RequestError(
                400, f"input {name!r} has binary_data_size but the request has no "
                "Inference-Header-Content-Length header",
            )  # fmt: skip
        if offset + size > len(binary):
            raise RequestError(
                400, f"input {name!r}: binary_data_size {size} runs past the end of the body"
            )
        return _from_bytes(binary[offset : offset + size], spec, shape, count), size
    if "data" not in item:
        raise RequestError(400, f"input {name!r} needs 'data' (or binary_data_size)")
    return _from_json(item["data"], spec, shape, count), 0


def _context_spec(item: dict[str, Any], name: str) -> TensorSpec:
    """A context column sent as an input: ``[batch]`` or ``[batch, 1]`` of any datatype."""
    datatype = item.get("datatype")
    dtype = np.object_ if datatype == "BYTES" else _NUMPY.get(str(datatype))
    if dtype is None:
        raise RequestError(
            400, f"context input {name!r}: datatype {datatype!r} is none of the protocol's "
            f"({', '.join(sorted(set(V2_TYPES.values())))})",
        )  # fmt: skip
    shape = item.get("shape")
    rank = len(shape) if isinstance(shape, list) else 1
    return TensorSpec(name, dtype, [None, 1] if rank == 2 else [None])


def _context_columns(
    sent: dict[str, np.ndarray], declared: tuple[str, ...], rows: int
) -> dict[str, np.ndarray]:
    from .columns import context_values

    return {
        name: context_values(name, sent[name].reshape(-1).tolist(), rows)
        if name in sent
        else np.full(rows, None, dtype=object)
        for name in declared
    }


def _from_bytes(chunk: bytes, spec: TensorSpec, shape: list[int], count: int) -> np.ndarray:
    if spec.dtype is np.object_:
        values = _bytes_elements(chunk, spec.name)
        if len(values) != count:
            raise RequestError(400, f"input {spec.name!r}: {len(values)} strings for shape {shape}")
        return np.array(values, dtype=object).reshape(shape)
    dtype = np.dtype(spec.dtype)
    if len(chunk) != count * dtype.itemsize:
        raise RequestError(
            400, f"input {spec.name!r}: {len(chunk)} bytes of binary data, but shape {shape} "
            f"of {spec.datatype} takes {count * dtype.itemsize}",
        )  # fmt: skip
    return np.frombuffer(chunk, dtype=dtype.newbyteorder("<")).reshape(shape)


def _bytes_elements(chunk: bytes, name: str) -> list[str]:
    """BYTES tensors in binary: each element a 4-byte little-endian length, then its bytes."""
    values, i = [], 0
    while i < len(chunk):
        if i + 4 > len(chunk):
            raise RequestError(400, f"input {name!r}: a BYTES element's length is cut short")
        n = int.from_bytes(chunk[i : i + 4], "little")
        if i + 4 + n > len(chunk):
            raise RequestError(400, f"input {name!r}: a BYTES element runs past its data")
        values.append(chunk[i + 4 : i + 4 + n].decode("utf-8", "replace"))
        i += 4 + n
    return values


def _from_json(data: Any, spec: TensorSpec, shape: list[int], count: int) -> np.ndarray:
    name = spec.name
    try:
        array = np.asarray(data)
    except (ValueError, TypeError, OverflowError, RecursionError):
        raise RequestError(400, f"input {name!r}: 'data' is not a rectangular array") from None
    kind = array.dtype.kind
    if spec.dtype is np.object_:
        if kind != "U" and not (kind == "O" and all(isinstance(v, str) for v in array.flat)):
            raise RequestError(400, f"input {name!r}: BYTES data must be strings")
        return _reshape(array.astype(object), name, shape, count)
    dtype = np.dtype(spec.dtype)
    if kind == "O" and array.size and all(type(v) is int for v in array.flat):
        raise RequestError(400, f"input {name!r}: a value is out of range for {spec.datatype}")
    if dtype.kind == "b":
        if kind != "b" and array.size:
            raise RequestError(400, f"input {name!r}: BOOL data must be true or false")
    elif kind not in "iuf" and array.size:
        raise RequestError(400, f"input {name!r}: {spec.datatype} data must be numbers")
    elif dtype.kind in "iu" and kind == "f" and array.size:
        raise RequestError(400, f"input {name!r}: {spec.datatype} data must be integers")
    elif dtype.kind in "iu" and array.size:
        info = np.iinfo(dtype)
        if int(array.min()) < info.min or int(array.max()) > info.max:
            raise RequestError(400, f"input {name!r}: a value is out of range for {spec.datatype}")
    with np.errstate(over="ignore"):  # beyond FP32's range is inf, as a cast in C would give
        return _reshape(array.astype(dtype), name, shape, count)


def _reshape(array: np.ndarray, name: str, shape: list[int], count: int) -> np.ndarray:
    if array.size != count:
        raise RequestError(
            400, f"input {name!r}: {array.size} values in 'data' for shape {shape} ({count})"
        )
    return array.reshape(shape)


def _requested_outputs(
    value: Any, served: ServedVersion, model: str, request: InferRequest
) -> None:
    if value is None:
        return
    if not isinstance(value, list):
        raise RequestError(400, "the request's 'outputs' must be a list")
    known = set(served.outputs)
    names: list[str] = []
    for i, item in enumerate(value):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise RequestError(400, f"outputs[{i}] must be an object with a 'name'")
        name = item["name"]
        if name not in known:
            raise RequestError(
                400, f"unexpected inference output {name!r} for model {model!r}; its outputs "
                f"are {served.outputs}",
            )  # fmt: skip
        params = _object(item.get("parameters"), f"output {name!r}: 'parameters'")
        if params.get("classification", 0):
            raise RequestError(400, f"output {name!r}: the classification extension is not "
                               "supported; ask for the output itself")  # fmt: skip
        if "binary_data" in params:
            request.binary[name] = _flag(params, "binary_data", f"output {name!r}")
        if name not in names:
            names.append(name)
    request.outputs = names or None


def _class_parameters(served: ServedVersion, name: str) -> dict[str, Any]:
    """A ZipMap output's class labels, as JSON text (a parameter is never a list)."""
    labels = served.class_labels.get(name)
    return {} if labels is None else {CLASS_LABELS: dumps(labels).decode()}


def infer_response(
    model: str, served: ServedVersion, request: InferRequest, outputs: dict[str, np.ndarray]
) -> tuple[bytes, dict[str, str]]:
    """The response body and its headers (binary outputs follow the JSON header)."""
    described: list[dict[str, Any]] = []
    chunks: list[bytes] = []
    for name, array in outputs.items():
        datatype = datatype_of(array.dtype)
        entry: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(array.shape)}
        params = _class_parameters(served, name) if served.class_labels else {}
        if request.binary.get(name, request.binary_default):
            raw = _to_bytes(array) if datatype == "BYTES" else np.ascontiguousarray(array).tobytes()
            params["binary_data_size"] = len(raw)
            chunks.append(raw)
        else:
            entry["data"] = tensor_list(array, flat=True)
        if params:
            entry["parameters"] = params
        described.append(entry)
    answer: dict[str, Any] = {"model_name": model, "model_version": served.version}
    if request.id is not None:
        answer["id"] = request.id
    answer["outputs"] = described
    head = dumps(answer)
    if not chunks:
        return head, {"content-type": "application/json"}
    return head + b"".join(chunks), {
        "content-type": "application/octet-stream",
        "inference-header-content-length": str(len(head)),
    }


def _to_bytes(array: np.ndarray) -> bytes:
    parts = []
    for value in array.ravel().tolist():
        data = value if isinstance(value, bytes) else str(value).encode()
        parts.append(len(data).to_bytes(4, "little") + data)
    return b"".join(parts)


def model_metadata(name: str, versions: list[str], served: ServedVersion) -> dict[str, Any]:
    """What the model takes and answers; a ZipMap output is FP32 ``[-1, classes]`` with its
    class labels in ``parameters``."""
    labels = served.class_labels
    return {
        "name": name,
        "versions": versions,
        "platform": "onnxruntime_onnx",
        "inputs": [
            {"name": s.name, "datatype": s.datatype, "shape": s.protocol_shape()}
            for s in served.inputs
        ],
        "outputs": [
            {"name": s.name, "datatype": s.datatype, "shape": s.protocol_shape()}
            | ({"parameters": _class_parameters(served, s.name)} if s.name in labels else {})
            for s in served.output_specs
        ],
    }


def server_metadata(version: str) -> dict[str, Any]:
    return {"name": "jupyter-mlops", "version": version, "extensions": ["binary_tensor_data"]}
