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
