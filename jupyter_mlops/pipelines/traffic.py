"""What a deployment has captured, as a cheap fingerprint for a step's cache key.

A monitor step judges the traffic a deployment captured: with no new request and the same
versions and weights since its last check, its answer cannot change, so it may come from
the cache. Listing the capture segments (name, size, modification time) is enough: a
segment only ever grows, a new one gets a new name, and pruning removes files.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ..config import Settings

#: capture segments, Arrow (``.arrows``) and the JSON lines of earlier releases
_CAPTURE_GLOB = "capture-*"


def traffic_fingerprint(settings: Settings, deployment_id: str) -> str:
    """Changes whenever ``deployment_id`` captures a request or changes what it serves."""
    digest = hashlib.sha256()
    capture = settings.state_dir / "inference" / deployment_id
    for path in sorted(capture.glob(_CAPTURE_GLOB)) if capture.is_dir() else []:
        try:
            info = path.stat()
        except FileNotFoundError:
            continue  # pruned while we listed
        digest.update(f"{path.name}\0{info.st_size}\0{info.st_mtime_ns}\n".encode())
    digest.update(b"\1")
    digest.update(_read(settings.state_dir / "deployments" / deployment_id / "deployment.json"))
    return digest.hexdigest()


def _read(path: Path) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError:
        return os.fsencode(f"no {path.name}")
