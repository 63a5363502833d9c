"""Dynamic quantization of a packaged ONNX model with onnxruntime's tools, on its own budget.

The weights of MatMul, Gemm, Conv, LSTM, Attention and Gather nodes become int8 and the
activations are quantized at run time (dynamic: no calibration data is needed). The float
model has passed its parity check already; the quantized one is compared with the trained
model on the same batches, against ``quantized_tolerance`` (an absolute difference on the
outputs, on the probabilities for a classifier).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import PackagingError, ParityError, QuantizedParityError
from .export import require
from .parity import ParityReport

#: the default budget: quantizing weights to 8 bits moves probabilities by ~1e-3..1e-2
QUANTIZED_TOLERANCE = 0.05
MODES = ("dynamic",)
#: the weight types onnxruntime's quantizer writes (INT8, UINT8 in onnx.TensorProto)
_QUANTIZED_TYPES = (2, 3)
#: the operators whose constant weights dynamic quantization turns into int8
_WEIGHTED_OPS = {"MatMul", "Gemm", "Conv", "LSTM", "Attention", "Gather"}

#: checks a candidate ONNX file against the trained model on the float check's batches
Recheck = Callable[[Path, float], ParityReport]


@dataclass
class QuantizedModel:
    """The quantized file, its parity and what it saves."""

    proto: Any
    path: Path
    parity: ParityReport
    float_size_bytes: int
    size_bytes: int
    #: weight tensors stored as int8 (one per quantized MatMul, Conv, LSTM gate, ...)
    quantized_weights: int
    mode: str = "dynamic"
    weight_type: str = "int8"
    #: weights use 7 of the 8 bits (see ``quantize``)
    reduce_range: bool = True

    def summary(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "weight_type": self.weight_type,
            "reduce_range": self.reduce_range,
            "quantized_weights": self.quantized_weights,
            "float_size_bytes": self.float_size_bytes,
            "size_bytes": self.size_bytes,
            "parity": self.parity.to_dict(),
        }

    def metrics(self) -> dict[str, float]:
        return {
            "mlops.quantized_parity_max_abs_diff": self.parity.max_abs_diff,
            "mlops.quantized_parity_max_rel_diff": self.parity.max_rel_diff,
            # the gate reads the budget beside the figure: a run says what it was held to
            "mlops.quantized_parity_tolerance": self.parity.tolerance,
            "mlops.float_size_bytes": float(self.float_size_bytes),
            "mlops.quantized_size_bytes": float(self.size_bytes),
        }

    def tags(self) -> dict[str, str]:
        return {
            "mlops.quantized": f"{self.mode}-{self.weight_type}",
            "mlops.quantization": json.dumps(self.summary()),
        }


def quantize_mode(quantize: Any, tolerance: float) -> str | None:
    """``None`` (no quantization) or the mode asked for; anything else names what to pass."""
    if quantize is None or quantize is False:
        return None
    mode = "dynamic" if quantize is True else quantize
    if mode not in MODES:
        raise PackagingError(
            f"quantize={quantize!r}: pass True (or 'dynamic') for onnxruntime's dynamic "
            "quantization; static quantization needs calibration data and is not offered"
        )
    if not tolerance >= 0:  # also refuses NaN
        raise PackagingError(f"quantized_tolerance must be >= 0, got {tolerance}")
    return str(mode)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The quantizer logs and warns about each tensor it skips; the outcome is reported."""
    logger = logging.getLogger()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _int8_weights(proto: Any) -> int:
    return sum(1 for t in proto.graph.initializer if t.data_type in _QUANTIZED_TYPES)


def _keep_interface(proto: Any, float_proto: Any) -> None:
    """The float model's input and output types: shape inference can pin a dynamic axis (an
    LSTM's sequence) to the example's size, and onnxruntime then warns at every other size."""
    for ours, theirs in ((proto.graph.input, float_proto.graph.input),
                         (proto.graph.output, float_proto.graph.output)):  # fmt: skip
        declared = {v.name: v.type for v in theirs}
        for value in ours:
            if value.name in declared:
                value.type.CopyFrom(declared[value.name])


def _has_weights(proto: Any) -> bool:
    constants = {t.name for t in proto.graph.initializer}
    return any(
        n.op_type in _WEIGHTED_OPS and any(i in constants for i in n.input)
        for n in proto.graph.node
    )


def _nothing_to_quantize(proto: Any) -> PackagingError:
    ops = sorted({n.op_type for n in proto.graph.node})
    trees = [op for op in ops if op.startswith("TreeEnsemble")]
    why = (
        "a tree ensemble holds split thresholds, not weight matrices"
        if trees
        else "none of its weights feeds a MatMul, Gemm, Conv, LSTM, Attention or Gather node"
    )
    return PackagingError(
        f"quantize=True: this model has nothing dynamic quantization can make int8 ({why}; "
        f"its graph has {', '.join(ops) or 'no operators'}): package it without quantize=True"
    )


def quantize_model(
    float_path: Path, recheck: Recheck, float_parity: ParityReport, tolerance: float
) -> QuantizedModel:
    """Quantize ``float_path`` beside it, then check it; raise when it cannot or is too far."""
    onnx = require("onnx", "torch")
    require("onnxruntime", "torch")
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    float_proto = onnx.load(str(float_path))
    if not _has_weights(float_proto):  # the quantizer itself fails obscurely or does nothing
        raise _nothing_to_quantize(float_proto)
    source = float_path.with_name("model.pre.onnx")
    out = float_path.with_name("model.quantized.onnx")
    with _quiet():
        try:
            # shape inference lets the quantizer see more tensors; it cannot read every graph
            # (string inputs of a table, some contrib ops), and quantizing works without it
            quant_pre_process(str(float_path), str(source))
        except Exception:
            source = float_path
        try:
            # 7-bit weights: on x86 CPUs without VNNI (AVX2 only) onnxruntime's u8 x s8 integer
            # matmul saturates with full 8-bit weights, which made even a small MLP 0.07 off;
            # the model may be served on any CPU, so the range that holds on all of them
            quantize_dynamic(str(source), str(out), weight_type=QuantType.QInt8, reduce_range=True)
        except Exception as err:
            raise PackagingError(
                f"quantize=True: onnxruntime's quantizer failed on this model: "
                f"{type(err).__name__}: {err}; package it without quantize=True"
            ) from None
    proto = onnx.load(str(out))
    _keep_interface(proto, float_proto)
    out.write_bytes(proto.SerializeToString())
    weights = _int8_weights(proto) - _int8_weights(float_proto)
    if weights <= 0:
        raise _nothing_to_quantize(proto)
    try:
        parity = recheck(out, tolerance)
    except ParityError as err:
        raise QuantizedParityError(
            "the quantized model is too far from the trained model: max absolute difference "
            f"{err.max_abs:.3g} > quantized_tolerance {tolerance:g} (max relative "
            f"{err.max_rel:.3g}); the float ONNX model is within {float_parity.max_abs_diff:.3g}"
            f" of it (tolerance {float_parity.tolerance:g}): raise quantized_tolerance= if that "
            "loss is acceptable, or package without quantize=True",
            err.max_abs,
            err.max_rel,
            tolerance,
            float_parity.max_abs_diff,
        ) from None
    return QuantizedModel(
        proto=proto,
        path=out,
        parity=parity,
        float_size_bytes=float_path.stat().st_size,
        size_bytes=out.stat().st_size,
        quantized_weights=weights,
    )
