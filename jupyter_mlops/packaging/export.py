"""torch -> ONNX with the dynamo exporter: one file, dynamic axes (the batch at least), checked."""

from __future__ import annotations

import contextlib
import io
import re
import warnings
from pathlib import Path
from typing import Any

from .errors import ExportError, PackagingError

_OP = re.compile(r"op='([^']+)'")


def require(module: str, extra: str) -> Any:
    """Import an optional dependency or say which extra installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise PackagingError(
            f"{module} is not installed: pip install 'jupyter-mlops[{extra}]'"
        ) from None


def as_inputs(example: Any) -> tuple[Any, ...]:
    """The example as a tuple of tensors (one per model input)."""
    torch = require("torch", "torch")
    items = example if isinstance(example, (tuple, list)) else (example,)
    out = []
    for i, item in enumerate(items):
        if isinstance(item, torch.Tensor):
            out.append(item.detach())
            continue
        try:
            out.append(torch.as_tensor(item))
        except (TypeError, ValueError, RuntimeError):
            raise PackagingError(
                f"example input {i} is a {type(item).__name__}, not a tensor or an array"
            ) from None
    if any(t.dim() == 0 for t in out):
        raise PackagingError("example inputs need a batch dimension (got a scalar)")
    return tuple(out)


def check_runs(model: Any, inputs: tuple[Any, ...]) -> Any:
    """Run the model once in torch; a shape mistake surfaces here with the shapes named."""
    torch = require("torch", "torch")
    try:
        with torch.no_grad():
            return model(*inputs)
    except Exception as err:
        shapes = ", ".join(str(tuple(t.shape)) for t in inputs)
        raise PackagingError(
            f"the model does not accept the example of shape {shapes}: "
            f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        ) from None


def export_onnx(
    model: Any,
    inputs: tuple[Any, ...],
    path: Path,
    input_names: list[str],
    output_names: list[str],
    dynamic: tuple[dict[int, Any], ...] | None = None,
) -> Any:
    """Export, save as a single file, run ``onnx.checker``; return the loaded ONNX model.

    ``dynamic`` holds one ``{axis: torch.export.Dim}`` per input; by default the batch axis.
    """
    torch = require("torch", "torch")
    onnx = require("onnx", "torch")
    require("onnxscript", "torch")
    if dynamic is None:
        batch = torch.export.Dim("batch")
        dynamic = tuple({0: batch} for _ in inputs)
    noise = io.StringIO()
    try:
        # the exporter narrates each stage on stdout; keep it out of the user's cell, and its
        # note that axes sharing one Dim keep one name, which is what sharing it asks for
        with contextlib.redirect_stdout(noise), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="# The axis name", category=UserWarning)
            program = torch.onnx.export(
                model,
                inputs,
                dynamo=True,
                external_data=False,
                dynamic_shapes=dynamic,
                input_names=input_names,
                output_names=output_names,
                verbose=False,
            )
    except Exception as err:
        text = str(err)
        found = _OP.search(text)
        op = found.group(1) if found else None
        reason = f"the operator {op} has no ONNX translation" if op else text.splitlines()[0]
        raise ExportError(f"ONNX export failed: {reason}", op=op) from None
    if program is None:
        raise ExportError("ONNX export produced no program")
    program.save(str(path), external_data=False)
    proto = onnx.load(str(path))
    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as err:
        raise ExportError(f"the exported model fails onnx.checker: {err}") from None
    return proto
