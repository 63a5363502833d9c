"""A model version and its ONNX file, read straight from the project's embedded registry.

``import mlflow`` and opening its store take 2-3 s, most of a deploy. A version already in
the embedded SQLite store needs two rows of two tables and a file on the local disk. This
reads them without MLflow; anything unexpected (a tracking server, another schema, no such
row, an artifact that is not a local file) answers None, and the caller takes the MLflow
path, whose errors say what is wrong.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import urllib.parse
from pathlib import Path

from ..config import Settings
from ..store import sqlite_path


def _one(conn: sqlite3.Connection, query: str, args: tuple[str, ...]) -> tuple[str, ...] | None:
    rows = conn.execute(query, args).fetchall()
    return tuple(str(v) for v in rows[0]) if len(rows) == 1 else None


def local_onnx(
    settings: Settings, name: str, alias: str | None, version: str | None
) -> tuple[str, Path, Path] | None:
    """(version, its model directory, its ONNX file) from the embedded store, or None to
    ask MLflow."""
    db = sqlite_path(settings.registry_uri)
    if db is None or not db.is_file():
        return None
    try:
        with contextlib.closing(sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)) as conn:
            conn.execute("PRAGMA busy_timeout = 5000")
            if version is None:
                row = _one(
                    conn,
                    "SELECT version FROM registered_model_aliases WHERE name = ? AND alias = ?",
                    (name, str(alias)),
                )
                if row is None:
                    return None
                version = row[0]
            found = _one(
                conn,
                "SELECT storage_location, status FROM model_versions "
                "WHERE name = ? AND version = ?",
                (name, str(version)),
            )
    except sqlite3.Error:
        return None
    if found is None or found[1] != "READY":
        return None
    location = urllib.parse.urlparse(found[0])
    if location.scheme not in ("file", "") or location.netloc not in ("", "localhost"):
        return None
    root = Path(urllib.parse.unquote(location.path))
    models = sorted(root.rglob("*.onnx")) if root.is_dir() else []
    if not models:
        return None
    return str(version), root, models[0]


def link_tree(source: Path, dest: Path) -> None:
    """Every file under ``source`` at the same place under ``dest``: hard links (instant, no
    space) where the disk allows, else copies. The whole model directory, as MLflow would
    download it, since an ONNX file may keep its weights in files beside it."""
    for path in sorted(source.rglob("*")):
        if path.is_dir():
            continue
        target = dest / path.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            target.unlink()
        try:
            os.link(path, target)
        except OSError:
            shutil.copyfile(path, target)
