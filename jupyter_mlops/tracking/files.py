"""The files a cell run read and wrote, and their versions.

Python raises the ``open`` audit event for ``open()``, ``io.open_code`` and ``os.open``, so
pandas' and numpy's readers, ``torch.load`` and plain ``open`` are all seen (readers that open
files in C, such as pyarrow's, are not). An audit hook cannot be removed, so one hook is
installed per process and does nothing unless a ``FileWatch`` is watching a cell; it keeps
only paths inside the project and only opens made on the kernel's thread, so the cost of a
read is one dictionary entry per ``open`` call, never per byte.

A file's version is its size and modification time, read with one ``stat`` when the cell
ends; the content digest (all of a small file, sampled blocks of a large one) is computed by
the writer process, off the kernel's thread, for MLflow's dataset inputs.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

#: a file read or written is the name ``file:PATH`` (project-relative) in the dataflow
FILE_PREFIX = "file:"
#: past this size a digest reads sampled blocks, not the whole file
WHOLE_FILE_LIMIT = 8 * 1024 * 1024
_BLOCK = 1024 * 1024
_SAMPLES = 16
#: at most this many files are kept per cell run (a cell globbing a folder of images)
MAX_FILES = 200
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
_SKIP_SUFFIXES = (".py", ".pyc", ".pyi", ".so", ".pth")
_SKIP_PARTS = frozenset({"__pycache__", ".git", ".ipynb_checkpoints", "node_modules"})

_watch: FileWatch | None = None
_hook_installed = False
_hook_lock = threading.Lock()


def _hook(event: str, args: tuple[Any, ...]) -> None:
    # keep this cheap and exception-free: it runs for every audit event in the process
    if event != "open":
        return
    watch = _watch
    if watch is None or not watch.active or threading.get_ident() != watch.thread:
        return
    try:
        watch.seen(args)
    except Exception:
        pass


class FileWatch:
    """Records the project files opened on one thread while a cell runs."""

    def __init__(self, root: Path, skip: Iterable[Path] = ()) -> None:
        self.root = os.path.realpath(root)
        self._prefix = self.root.rstrip(os.sep) + os.sep
        self._skip = tuple(os.path.realpath(p).rstrip(os.sep) + os.sep for p in skip)
        self.thread = threading.get_ident()
        self.active = False
        self._opened: dict[str, str] = {}
        self.overflow = 0

    def install(self) -> FileWatch:
        """Make this the process's watch (the kernel has one) and return it."""
        global _watch, _hook_installed
        with _hook_lock:
            if not _hook_installed:
                sys.addaudithook(_hook)
                _hook_installed = True
            _watch = self
        return self

    def uninstall(self) -> None:
        global _watch
        self.active = False
        if _watch is self:
            _watch = None

    def start(self) -> None:
        self._opened = {}
        self.overflow = 0
        self.thread = threading.get_ident()
        self.active = True

    def seen(self, args: tuple[Any, ...]) -> None:
        path, mode, flags = (*args, None, None, None)[:3]
        if isinstance(path, int):
            return  # a file descriptor: its path was seen when it was opened
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        elif not isinstance(path, str):
            path = os.fspath(path)
        full = os.path.abspath(path)
        if not full.startswith(self._prefix) or full.endswith(_SKIP_SUFFIXES):
            return
        if self._skip and full.startswith(self._skip):
            return
        relative = full[len(self._prefix) :]
        writes = (
            any(c in mode for c in "wax+")
            if isinstance(mode, str)
            else isinstance(flags, int) and bool(flags & _WRITE_FLAGS)
        )
        before = self._opened.get(relative)
        if before is None:
            if _SKIP_PARTS.intersection(relative.split(os.sep)):
                return
            if len(self._opened) >= MAX_FILES:
                self.overflow += 1
                return
            self._opened[relative] = "w" if writes else "r"
        elif before != "rw" and before != ("w" if writes else "r"):
            self._opened[relative] = "rw"

    def stop(self) -> list[dict[str, Any]]:
        """The files opened since ``start``: path (relative to the project), mode r, w or rw,
        and the version (size, mtime) each has now; a file gone by now has no version."""
        self.active = False
        out = []
        for relative, mode in self._opened.items():
            entry: dict[str, Any] = {"path": relative.replace(os.sep, "/"), "mode": mode}
            version = file_version(os.path.join(self.root, relative))
            if version is not None:
                entry["version"] = version
            out.append(entry)
        self._opened = {}
        return out


def file_version(path: str | Path) -> str | None:
    """``size:mtime_ns`` of a regular file, None when it is not there."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not os.path.isfile(path):
        return None
    return f"{st.st_size}:{st.st_mtime_ns}"


def content_digest(path: str | Path) -> str | None:
    """A sha256 of the file's content: whole up to 8 MiB, past that its size and sampled
    1 MiB blocks spread over the file (first and last included). None when unreadable."""
    digest = hashlib.sha256()
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as fh:
            if size <= WHOLE_FILE_LIMIT:
                for block in iter(lambda: fh.read(_BLOCK), b""):
                    digest.update(block)
            else:
                digest.update(str(size).encode())
                step = (size - _BLOCK) / (_SAMPLES - 1)
                for i in range(_SAMPLES):
                    fh.seek(int(i * step))
                    digest.update(fh.read(_BLOCK))
    except OSError:
        return None
    return digest.hexdigest()


def current_versions(root: Path, paths: Iterable[str]) -> dict[str, str | None]:
    """What each project-relative path's version is now (None: gone)."""
    return {p: file_version(root / p) for p in paths}
