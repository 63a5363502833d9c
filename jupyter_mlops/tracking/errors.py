"""Where a cell failed: the last frame inside the cell, its line, and a traceback tail.

Runs only after a cell raised, on the kernel's thread; it reads the traceback the exception
already carries and the source IPython keeps in ``linecache``.
"""

from __future__ import annotations

import linecache
import traceback
from collections.abc import Mapping
from types import TracebackType
from typing import Any

#: how many frames of the traceback a record keeps, and how many characters at most
TAIL_FRAMES = 4
TAIL_CHARS = 2000


def _cell_start(error: BaseException, cell_globals: Mapping[str, Any]) -> TracebackType | None:
    """The traceback entry of the cell's own code (IPython's frames come before it)."""
    tb = error.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code.co_name == "<module>" and frame.f_globals is cell_globals:
            return tb
        tb = tb.tb_next
    return None


def _line(filename: str, lineno: int, source: str) -> str:
    text = linecache.getline(filename, lineno)
    if not text:
        lines = source.splitlines()
        text = lines[lineno - 1] if 0 < lineno <= len(lines) else ""
    return text.strip()[:500]


def _tail(error: BaseException, tb: TracebackType | None, cell_file: str | None) -> str:
    exc = traceback.TracebackException(
        type(error), error, tb, limit=-TAIL_FRAMES, compact=True, capture_locals=False
    )
    text = "".join(exc.format(chain=False))
    if cell_file:
        text = text.replace(f'File "{cell_file}"', "Cell")
    text = text.removeprefix("Traceback (most recent call last):\n")
    return text if len(text) <= TAIL_CHARS else "…" + text[-(TAIL_CHARS - 1) :]


def error_details(
    error: BaseException, cell_globals: Mapping[str, Any], source: str
) -> dict[str, Any]:
    """``line``, ``code`` and ``where`` of the last frame in the cell, and ``traceback``.

    ``where`` is the function of the cell the error happened in (None: the cell's top level).
    A syntax error is placed at its own line. Keys without a value are left out.
    """
    out: dict[str, Any] = {}
    start = _cell_start(error, cell_globals)
    if isinstance(error, SyntaxError) and start is None:  # the cell did not compile
        if error.lineno:
            out["line"] = int(error.lineno)
            out["code"] = (error.text or "").strip()[:500] or _line("", error.lineno, source)
        out["traceback"] = "".join(traceback.format_exception_only(type(error), error))
        return out
    if start is None:
        out["traceback"] = _tail(error, error.__traceback__, None)
        return out
    cell_file = start.tb_frame.f_code.co_filename
    last: TracebackType | None = None
    tb: TracebackType | None = start
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == cell_file:
            last = tb
        tb = tb.tb_next
    assert last is not None
    out["line"] = int(last.tb_lineno)
    out["code"] = _line(cell_file, last.tb_lineno, source)
    name = last.tb_frame.f_code.co_name
    if name != "<module>":
        out["where"] = name
    out["traceback"] = _tail(error, start, cell_file)
    return out
