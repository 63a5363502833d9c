"""Cache keys for steps and the index of what each key produced.

A key covers everything that can change a step's result: the notebook's source (outputs
and metadata stripped), the resolved parameters, the upstream outputs, the content of
declared input files, the package version and, for a step that watches deployments, what
they captured.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .outputs import resolve_path


def notebook_fingerprint(path: Path) -> str:
    """Hash of a notebook's cell types and sources only."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    digest = hashlib.sha256()
    for cell in nb.get("cells", []):
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(source)
        digest.update(cell.get("cell_type", "").encode())
        digest.update(b"\0")
        digest.update(source.encode())
        digest.update(b"\1")
    return digest.hexdigest()


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def step_cache_key(
    *,
    notebook: Path,
    params: dict[str, Any],
    upstream: dict[str, dict[str, Any]],
    inputs: dict[str, str],
    version: str,
    traffic: dict[str, str] | None = None,
) -> str:
    material = {
        "notebook": notebook_fingerprint(notebook),
        "params": params,
        "upstream": upstream,
        "inputs": inputs,
        "version": version,
    }
    if traffic:
        material["traffic"] = traffic
    text = json.dumps(material, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass
class CacheEntry:
    """What a cached step produced, and which run produced it."""

    key: str
    step: str
    run_id: str
    outputs: dict[str, Any]
    path_outputs: list[str] = field(default_factory=list)
    #: content hash of each path output when it was produced
    path_hashes: dict[str, str] = field(default_factory=dict)
    notebook: str = ""


class CacheIndex:
    """``.mlops/cache/<key>.json`` files."""

    def __init__(self, directory: Path):
        self.directory = directory

    def get(self, key: str, base: Path) -> CacheEntry | None:
        """The entry for ``key`` if the files it points at are still what they were."""
        try:
            data = json.loads((self.directory / f"{key}.json").read_text())
            entry = CacheEntry(**data)
        except (FileNotFoundError, ValueError, TypeError):
            return None
        for name in entry.path_outputs:
            target = resolve_path(str(entry.outputs.get(name, "")), base)
            if not target.is_file() or file_hash(target) != entry.path_hashes.get(name):
                return None
        return entry

    def put(self, entry: CacheEntry) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.directory / f"{entry.key}.tmp{os.getpid()}"
        tmp.write_text(json.dumps(asdict(entry), default=str))
        os.replace(tmp, self.directory / f"{entry.key}.json")
