"""JSON in and out of the model server without a 500: any nesting, any number, valid output.

Python's parser accepts ``NaN`` and ``Infinity`` (as MLflow's server does) and raises
``RecursionError`` on deep nesting (numpy then refuses anything deeper than 64 axes); the
encoder refuses non-finite floats, so non-finite output values are written as ``null`` and
every answer is JSON that any client can parse.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from .model import RequestError


def load_json(raw: bytes, what: str = "the body") -> Any:
    """``raw`` parsed; a 400 naming the problem for bad UTF-8, bad JSON or deep nesting."""
    try:
        return json.loads(raw)
    except UnicodeDecodeError as err:
        raise RequestError(400, f"{what} is not valid UTF-8: {err.reason}") from None
    except RecursionError:
        raise RequestError(400, f"{what} is nested too deeply to be a tensor") from None
    except ValueError as err:
        raise RequestError(400, f"{what} is not valid JSON: {err}") from None


def tensor_list(array: np.ndarray, flat: bool = False) -> Any:
    """``array`` as JSON data: nested lists (or flat), non-finite floats as ``null``."""
    values = array.ravel() if flat else array
    if array.dtype.kind in "fc" and not np.all(np.isfinite(array)):
        out = values.astype(object)
        out[~np.isfinite(values)] = None
        return out.tolist()
    if array.dtype.kind in "SO":
        return [_text(v) for v in values.ravel().tolist()] if flat else _texts(values.tolist())
    return values.tolist()


def _text(value: Any) -> Any:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _texts(value: Any) -> Any:
    if isinstance(value, list):
        return [_texts(v) for v in value]
    return _text(value)


def dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
