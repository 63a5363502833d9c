"""One served model version: an onnxruntime session and the checks its inputs must pass."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

_ONNX_TO_NUMPY = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(bool)": np.bool_,
    "tensor(float16)": np.float16,
}
#: KServe v2 datatype names
V2_TYPES = {
    np.float32: "FP32",
    np.float64: "FP64",
    np.int64: "INT64",
    np.int32: "INT32",
    np.int8: "INT8",
    np.uint8: "UINT8",
    np.bool_: "BOOL",
    np.float16: "FP16",
}


class RequestError(Exception):
    """A bad request: answered with ``status`` and ``message``, never a 500."""

    def __init__(self, status: int, message: str, code: str = "BAD_REQUEST"):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


@dataclass
class InputSpec:
    name: str
    dtype: Any
    #: None for a dynamic axis
    shape: list[int | None]


class ServedVersion:
    """A model version ready to answer requests."""

    def __init__(self, version: str, path: Path):
        import onnxruntime as ort

        options = ort.SessionOptions()
        # one request at a time per thread; threads beyond the cores only add contention
        options.intra_op_num_threads = 1
        self.version = version
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.inputs = [
            InputSpec(
                i.name,
                _ONNX_TO_NUMPY.get(i.type, np.float32),
                [d if isinstance(d, int) else None for d in i.shape],
            )
            for i in self.session.get_inputs()
        ]
        self.outputs = [o.name for o in self.session.get_outputs()]

    def coerce(self, arrays: dict[str, Any]) -> dict[str, np.ndarray]:
        """Check names, dtypes and shapes against the signature; arrays ready for the session."""
        expected = {s.name for s in self.inputs}
        if set(arrays) != expected:
            raise RequestError(
                400,
                f"expected input(s) {sorted(expected)}, got {sorted(arrays)}",
                "INVALID_PARAMETER_VALUE",
            )
        out = {}
        for spec in self.inputs:
            try:
                array = np.asarray(arrays[spec.name])
            except (ValueError, TypeError):
                raise RequestError(400, f"input {spec.name!r} is not a rectangular array") from None
            if array.dtype == object:
                raise RequestError(
                    400, f"input {spec.name!r} is not a rectangular array of numbers"
                )
            if spec.dtype is not np.bool_ and not (
                np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_
            ):
                raise RequestError(400, f"input {spec.name!r}: expected numbers, got {array.dtype}")
            if array.ndim == len(spec.shape) - 1:
                array = array[None, ...]  # a single instance without its batch axis
            if array.ndim != len(spec.shape) or any(
                want is not None and want != got
                for want, got in zip(spec.shape, array.shape, strict=False)
            ):
                shape = ["batch" if d is None else d for d in spec.shape]
                raise RequestError(
                    400,
                    f"input {spec.name!r}: shape {list(array.shape)} does not match {shape}",
                    "INVALID_PARAMETER_VALUE",
                )
            if (
                np.issubdtype(spec.dtype, np.integer)
                and np.issubdtype(array.dtype, np.floating)
                and not np.all(np.mod(array, 1) == 0)
            ):
                raise RequestError(400, f"input {spec.name!r}: expected integers")
            out[spec.name] = array.astype(spec.dtype, copy=False)
        return out

    def predict(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        results = self.session.run(None, feeds)
        return dict(zip(self.outputs, results, strict=True))
