"""JSON in and out of the model server without a 500: any nesting, any number, valid output.

Python's parser accepts ``NaN`` and ``Infinity`` (as MLflow's server does) and raises
``RecursionError`` on deep nesting (numpy then refuses anything deeper than 64 axes); the
encoder refuses non-finite floats, so non-finite output values are written as ``null`` and
every answer is JSON that any client can parse.

orjson reads and writes first (seven times faster than the standard library on a batch of
floats, which is most of a request's time); anything it refuses (``NaN``, nesting past 1024,
integers past 64 bits, keys that are not strings) goes to the standard library, so answers and
error messages are those of Python's own ``json``.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import orjson

from .model import RequestError


def loads(raw: bytes) -> Any:
    """``json.loads(raw)``, by orjson when it can: the same value or the same error."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)


def load_json(raw: bytes, what: str = "the body") -> Any:
    """``raw`` parsed; a 400 naming the problem for bad UTF-8, bad JSON or deep nesting."""
    try:
        return loads(raw)
    except UnicodeDecodeError as err:
        raise RequestError(400, f"{what} is not valid UTF-8: {err.reason}") from None
    except RecursionError:
        raise RequestError(400, f"{what} is nested too deeply to be a tensor") from None
    except ValueError as err:
        raise RequestError(400, f"{what} is not valid JSON: {err}") from None


def tensor_list(array: np.ndarray, flat: bool = False) -> Any:
    """``array`` as JSON data: nested lists (or flat), non-finite floats as ``null``."""
    values = array.ravel() if flat else array
    if array.dtype.kind in "fc" and not np.isfinite(array).all():
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
    """Compact UTF-8 JSON; a non-finite float is written ``null``, never as ``NaN``."""
    try:
        return orjson.dumps(value)
    except TypeError:  # what orjson does not write (keys that are not strings, big integers)
        return json.dumps(
            value, ensure_ascii=False, allow_nan=False, separators=(",", ":")
        ).encode()
