"""Which of a notebook's variables ``package()`` can take, so a picker offers only those."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any


def _public(namespace: Mapping[str, Any]) -> list[tuple[str, Any]]:
    return sorted(
        (k, v) for k, v in namespace.items() if not k.startswith("_") and k not in ("In", "Out")
    )


def is_model(value: Any) -> bool:
    """A ``torch.nn.Module`` or a fitted-looking scikit-learn estimator."""
    from .sklearn import is_estimator

    torch = sys.modules.get("torch")  # a torch module exists only if torch is imported
    if torch is not None and isinstance(value, torch.nn.Module):
        return True
    return not isinstance(value, type) and is_estimator(value)


def is_batch(value: Any) -> bool:
    """A tensor, array or DataFrame with a batch axis, or a tuple of tensors."""
    if isinstance(value, tuple):
        return bool(value) and all(is_batch(v) for v in value)
    module = type(value).__module__.split(".")[0]
    shape = getattr(value, "shape", None)
    return module in ("torch", "numpy", "pandas") and shape is not None and len(shape) >= 1


def model_variables(namespace: Mapping[str, Any]) -> list[str]:
    """Names of the variables ``package()`` accepts as a model."""
    return [name for name, value in _public(namespace) if is_model(value)]


def batch_variables(namespace: Mapping[str, Any]) -> list[str]:
    """Names of the variables usable as an example input or a reference sample."""
    return [name for name, value in _public(namespace) if is_batch(value)]
