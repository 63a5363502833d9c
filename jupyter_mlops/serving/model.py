"""One served model version: an onnxruntime session and the checks its inputs must pass."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..exceptions import MlopsError
from . import zipmap

_ONNX_TO_NUMPY: dict[str, Any] = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(int16)": np.int16,
    "tensor(int8)": np.int8,
    "tensor(uint64)": np.uint64,
    "tensor(uint32)": np.uint32,
    "tensor(uint16)": np.uint16,
    "tensor(uint8)": np.uint8,
    "tensor(bool)": np.bool_,
    "tensor(float16)": np.float16,
    "tensor(string)": np.object_,
}
#: Open Inference Protocol datatype names
V2_TYPES: dict[Any, str] = {
    np.float32: "FP32",
    np.float64: "FP64",
    np.float16: "FP16",
    np.int64: "INT64",
    np.int32: "INT32",
    np.int16: "INT16",
    np.int8: "INT8",
    np.uint64: "UINT64",
    np.uint32: "UINT32",
    np.uint16: "UINT16",
    np.uint8: "UINT8",
    np.bool_: "BOOL",
    np.object_: "BYTES",
    np.str_: "BYTES",
    np.bytes_: "BYTES",
}


_BY_NAME = {np.dtype(t).name: name for t, name in V2_TYPES.items() if t is not np.str_}


def datatype_of(dtype: np.dtype[Any]) -> str:
    """The protocol's name for a numpy dtype (by name: onnxruntime hands out int64 arrays
    typed ``longlong``, a different scalar type of the same size)."""
    return _BY_NAME.get(dtype.name, "BYTES")


class RequestError(MlopsError):
    """A bad request: answered with ``status`` and ``message``, never a 500."""

    def __init__(self, status: int, message: str, code: str = "BAD_REQUEST"):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        #: the request's id, once known: the error answer carries it too
        self.request_id: str | None = None


@dataclass
class TensorSpec:
    name: str
    #: numpy scalar type; None for an output that is not a tensor (a sequence or a map)
    dtype: Any
    #: None for a dynamic axis
    shape: list[int | None]
    onnx_type: str = ""

    @property
    def datatype(self) -> str:
        """The Open Inference Protocol name of the type (BYTES for strings)."""
        return V2_TYPES.get(self.dtype, "BYTES")

    def protocol_shape(self) -> list[int]:
        return [-1 if d is None else d for d in self.shape]


InputSpec = TensorSpec


def _spec(arg: Any) -> TensorSpec:
    shape = arg.shape if isinstance(arg.shape, list) else []
    return TensorSpec(
        arg.name,
        _ONNX_TO_NUMPY.get(arg.type),
        [d if isinstance(d, int) else None for d in shape],
        arg.type,
    )


def check_shape(spec: TensorSpec, shape: tuple[int, ...] | list[int], what: str) -> None:
    if len(shape) != len(spec.shape) or any(
        want is not None and want != got for want, got in zip(spec.shape, shape, strict=False)
    ):
        want = ["batch" if d is None else d for d in spec.shape]
        raise RequestError(
            400, f"{what} {spec.name!r}: shape {list(shape)} does not match {want}",
            "INVALID_PARAMETER_VALUE",
        )  # fmt: skip


def tensor_signature(onnx_path: Path) -> bool | None:
    """The MLflow signature beside the ONNX file: None without one (or one of columns),
    True for named tensors, False for one unnamed tensor (what ``package()`` logs)."""
    from .columns import signature_inputs

    inputs = signature_inputs(onnx_path)
    if inputs is None or not all(isinstance(i, dict) and i.get("type") == "tensor" for i in inputs):
        return None
    return all("name" in i for i in inputs)


class ServedVersion:
    """A model version ready to answer requests."""

    def __init__(
        self, version: str, path: Path, context: tuple[str, ...] = (), model_name: str = ""
    ):
        import onnxruntime as ort

        options = ort.SessionOptions()
        # one request at a time per thread; threads beyond the cores only add contention
        options.intra_op_num_threads = 1
        self.version = version
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        #: the class labels of each probability output that ZipMap made a sequence of maps
        self.class_labels: dict[str, list[Any]] = {}
        if zipmap.has_maps([o.type for o in self.session.get_outputs()]):
            model, self.class_labels = zipmap.unzip(path)
            if self.class_labels:
                self.session = ort.InferenceSession(
                    model, options, providers=["CPUExecutionProvider"]
                )
        self.inputs = [_spec(i) for i in self.session.get_inputs()]
        self.output_specs = [_spec(o) for o in self.session.get_outputs()]
        self.outputs = [o.name for o in self.output_specs]
        #: outputs that are no tensor (a sequence, a map) and no ZipMap's: not answerable
        self.not_tensors = {o.name: o.onnx_type for o in self.output_specs if o.dtype is None}
        #: MLflow casts request data to a tensor signature's dtype, and only then
        self.signature = tensor_signature(path)
        from .columns import is_column_model

        #: one input per table column: requests name columns, answers are one record per row
        self.columns = is_column_model(self.inputs, path)
        from .columns import check_context

        check_context(context, self.inputs, model_name)
        #: columns a request may carry beside the inputs: captured, never fed to the model
        self.context = context

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
            value = arrays[spec.name]
            if isinstance(value, np.ndarray) and value.dtype == spec.dtype:
                check_shape(spec, value.shape, "input")
                out[spec.name] = value
                continue
            try:
                array = np.asarray(value)
            except (ValueError, TypeError, OverflowError, RecursionError):
                raise RequestError(400, f"input {spec.name!r} is not a rectangular array") from None
            if array.ndim == 0 and spec.shape:
                raise RequestError(400, f"input {spec.name!r}: a single number is not a tensor")
            out[spec.name] = self._cast(spec, array)
        return out

    def _cast(self, spec: TensorSpec, array: np.ndarray) -> np.ndarray:
        """MLflow's rule: the data's type must be the input's, except float64 for float32."""
        kind = array.dtype.kind
        if kind == "O" and array.ndim and all(type(v) is int for v in array.flat):
            raise RequestError(400, f"input {spec.name!r}: an integer is out of range")
        if kind == "O":
            raise RequestError(400, f"input {spec.name!r} is not a rectangular array of numbers")
        if spec.dtype is np.object_:
            if kind != "U":
                raise RequestError(400, f"input {spec.name!r}: expected strings")
            check_shape(spec, array.shape, "input")
            return array.astype(object)
        if kind not in "biuf":
            raise RequestError(400, f"input {spec.name!r}: expected numbers, got {array.dtype}")
        check_shape(spec, array.shape, "input")
        want = np.dtype(spec.dtype)
        if array.dtype == want:
            return array
        if (want == np.float32 and kind == "f") or (
            self.signature is not None and want.kind == "f" and kind in "iuf"
        ):
            with np.errstate(over="ignore"):  # beyond float32's range is inf, as MLflow casts
                return array.astype(want)
        got = {"b": "true/false", "i": "integers", "u": "integers", "f": "floats"}[kind]
        if want.kind == "f":
            hint = " (write 1.0, not 1)"
        elif want.kind in "iu" and kind in "iu":
            hint = " (an integer is out of range)" if want == np.int64 else ""
        else:
            hint = ""
        raise RequestError(
            400, f"input {spec.name!r} takes {want.name} and the data are {got}{hint}"
        )

    def predict(
        self, feeds: dict[str, np.ndarray], names: list[str] | None = None
    ) -> dict[str, np.ndarray]:
        """The session's outputs by name (all of them, or only ``names``)."""
        wanted = names or self.outputs
        if self.not_tensors and not self.not_tensors.keys().isdisjoint(wanted):
            name = next(n for n in wanted if n in self.not_tensors)
            raise RequestError(
                501, f"output {name!r} is a {self.not_tensors[name]}, not a tensor: this server "
                "answers tensors (and ZipMap's probabilities); ask for the other outputs (/v2 "
                "'outputs') or export the model with tensor outputs", "NOT_IMPLEMENTED",
            )  # fmt: skip
        try:
            results = self.session.run(wanted, feeds)
        except Exception as err:  # onnxruntime raises its own types; the input passed our checks
            message = str(err).split("\n", 1)[0][:500]
            raise RequestError(400, f"the model could not evaluate this input: {message}") from None
        return dict(zip(wanted, results, strict=True))
