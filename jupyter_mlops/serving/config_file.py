"""Reading and atomically rewriting a deployment's ``deployment.json``; private files."""

from __future__ import annotations

import contextlib
import json
import os
import threading
from pathlib import Path
from typing import Any

#: A deployment's files hold its bearer token and its users' requests: owner only.
FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: Path) -> Path:
    """``path`` created if missing, readable by its owner only."""
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    os.chmod(path, DIR_MODE)
    return path


def write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` in one rename (a reader never sees half of it) by a file only its
    owner can read; created so from the start, never readable by others for an instant."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}.{threading.get_ident()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def open_private(path: Path, mode: str = "ab") -> Any:
    """``open(path, mode)`` for a file created owner-only (a log, a segment)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if "a" in mode else os.O_TRUNC)
    if "x" in mode:
        flags |= os.O_EXCL
    fd = os.open(path, flags, FILE_MODE)
    os.chmod(path, FILE_MODE)  # an older file of looser mode
    return os.fdopen(fd, mode.replace("x", "w"))


def write_config(path: Path, config: dict[str, Any]) -> None:
    """Replace the file in one rename, so the server never reads half of it."""
    write_private(path, json.dumps(config, indent=1).encode())


def read_config(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text(encoding="utf-8")))
