"""Packaging errors: each names what to fix."""

from __future__ import annotations

from ..exceptions import MlopsError


class PackagingError(MlopsError):
    """The model cannot be packaged as given."""


class ExportError(PackagingError):
    """The exporter could not translate the model; ``op`` names the operator when known."""

    def __init__(self, message: str, op: str | None = None):
        super().__init__(message)
        self.op = op


class ParityError(PackagingError):
    """ONNX Runtime and torch disagree beyond the tolerance."""

    def __init__(self, message: str, max_abs: float, max_rel: float, tolerance: float):
        super().__init__(message)
        self.max_abs = max_abs
        self.max_rel = max_rel
        self.tolerance = tolerance


class ColumnMismatchError(PackagingError):
    """The example's columns are not the ones the pipeline was fitted on."""

    def __init__(self, message: str, missing: list[str], extra: list[str]):
        super().__init__(message)
        self.missing = missing
        self.extra = extra


class UnsupportedStepError(PackagingError):
    """A pipeline step has no ONNX converter; ``step`` is its path, ``cls`` its class."""

    def __init__(self, message: str, step: str, cls: str):
        super().__init__(message)
        self.step = step
        self.cls = cls


class QuantizedParityError(ParityError):
    """The quantized model is beyond its budget; ``float_max_abs`` is the float model's figure."""

    def __init__(
        self, message: str, max_abs: float, max_rel: float, tolerance: float, float_max_abs: float
    ):
        super().__init__(message, max_abs, max_rel, tolerance)
        self.float_max_abs = float_max_abs
