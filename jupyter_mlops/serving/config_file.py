"""Reading and atomically rewriting a deployment's ``deployment.json``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def write_config(path: Path, config: dict[str, Any]) -> None:
    """Replace the file in one rename, so the server never reads half of it."""
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(config, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def read_config(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text(encoding="utf-8")))
