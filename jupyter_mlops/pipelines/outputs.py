"""Step outputs: published by a notebook as a display of our own MIME type, read back from
the executed notebook by the runner (the way papermill's own ecosystem records values)."""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any

from ..exceptions import MlopsError

MIME = "application/vnd.jupyter-mlops.output+json"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class OutputError(MlopsError):
    """An output that cannot be published."""


def encode_output(name: str, value: Any) -> dict[str, Any]:
    """The JSON payload for ``output(name, value)``; a file path is marked as one."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise OutputError(f"output name {name!r}: use letters, digits and '_' (a Python name)")
    if isinstance(value, os.PathLike):
        return {"name": name, "kind": "path", "value": os.fspath(value)}
    if isinstance(value, float) and not math.isfinite(value):
        raise OutputError(f"output {name!r}: {value} is not a JSON number")
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise OutputError(
            f"output {name!r}: a value of type {type(value).__name__} is not JSON-serialisable "
            f"({err}); publish a number, string, bool, None, list, dict or a pathlib.Path"
        ) from None
    return {"name": name, "kind": "json", "value": value}


def read_outputs(nb: Any) -> dict[str, Any]:
    """Every output a notebook published, last value wins; paths as strings."""
    found: dict[str, Any] = {}
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []):
            data = out.get("data") or {}
            payload = data.get(MIME)
            if isinstance(payload, dict) and "name" in payload:
                found[payload["name"]] = payload.get("value")
    return found


def path_outputs(nb: Any) -> set[str]:
    """Names of the outputs that are file paths."""
    names = set()
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []):
            payload = (out.get("data") or {}).get(MIME)
            if isinstance(payload, dict) and payload.get("kind") == "path":
                names.add(payload["name"])
    return names


def resolve_path(value: str, base: Path) -> Path:
    p = Path(value)
    return p if p.is_absolute() else base / p
