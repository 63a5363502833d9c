"""Which names a cell really bound: the values before the cell, and how far it got.

The AST says which names a cell *may* bind. A name is recorded only when this cell bound it:
its value is not the object it held before the cell (compared by identity, for the names the
AST names only), or it is bound by an unconditional top-level statement the cell got past.
The second rule keeps ``epochs = 10`` run twice (the same cached int both times) a param of
the second run; the first keeps ``acc = 1 / 0`` from logging the ``acc`` of an earlier cell.
"""

from __future__ import annotations

import ast
import numbers
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

#: strings longer than this are never params, so holding them is not worth the memory
_HOLD_STR = 4096
_MISSING = object()


@dataclass(frozen=True)
class Definite:
    """A name bound by an unconditional top-level statement spanning ``first``-``last``."""

    name: str
    first: int
    last: int


def _targets(node: ast.AST, out: list[str]) -> None:
    if isinstance(node, ast.Name):
        out.append(node.id)
    elif isinstance(node, (ast.Tuple, ast.List)):
        for elt in node.elts:
            _targets(elt, out)
    elif isinstance(node, ast.Starred):
        _targets(node.value, out)


@lru_cache(maxsize=512)
def definite_bindings(source: str) -> tuple[Definite, ...]:
    """Names bound by assignments directly in the cell's body, with their lines.

    >>> definite_bindings("lr = 0.1\\nif x:\\n    y = 2")
    (Definite(name='lr', first=1, last=1),)
    """
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return ()
    out: list[Definite] = []
    for stmt in tree.body:
        names: list[str] = []
        if isinstance(stmt, ast.Assign):
            for target in stmt.targets:
                _targets(target, names)
        elif isinstance(stmt, ast.AugAssign) or (
            isinstance(stmt, ast.AnnAssign) and stmt.value is not None
        ):
            _targets(stmt.target, names)
        last = stmt.end_lineno or stmt.lineno
        out.extend(Definite(n, stmt.lineno, last) for n in names)
    return tuple(out)


def _mark(value: Any) -> tuple[int, Any]:
    """What to compare after the cell: the object itself when small, else a weak reference."""
    if isinstance(value, (str, bytes)):
        if len(value) <= _HOLD_STR:
            return 0, value
        return 2, id(value)
    if value is None or isinstance(value, numbers.Number):
        return 0, value
    try:
        return 1, weakref.ref(value)
    except TypeError:
        return 2, id(value)


def _same(mark: tuple[int, Any], value: Any) -> bool:
    kind, held = mark
    if kind == 0:
        return held is value
    if kind == 1:
        return held() is value
    return bool(held == id(value))


class BeforeCell:
    """The bindings of the names a cell may bind, taken just before it runs."""

    __slots__ = ("_marks",)

    def __init__(self, names: Iterable[str], namespace: Mapping[str, Any]) -> None:
        marks: dict[str, tuple[int, Any] | None] = {}
        for name in names:
            value = namespace.get(name, _MISSING)
            marks[name] = None if value is _MISSING else _mark(value)
        self._marks = marks

    def changed(self, name: str, namespace: Mapping[str, Any]) -> bool:
        """Whether ``name`` is bound now to something other than before the cell."""
        if name not in namespace:
            return False
        mark = self._marks.get(name, None)
        return mark is None or not _same(mark, namespace[name])


def failing_line(error: BaseException | None, cell_globals: Mapping[str, Any]) -> int | None:
    """The line of the cell that was running when ``error`` stopped it, if it is known."""
    tb = getattr(error, "__traceback__", None)
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code.co_name == "<module>" and frame.f_globals is cell_globals:
            return int(tb.tb_lineno)
        tb = tb.tb_next
    return None


def bound_by_cell(
    names: Iterable[str],
    source: str,
    before: BeforeCell | None,
    namespace: Mapping[str, Any],
    *,
    finished: bool,
    stopped_at: int | None,
) -> list[str]:
    """The names among ``names`` this cell bound, in order.

    ``finished``: the cell ran to its end. Otherwise ``stopped_at`` is the line it stopped
    on (None when unknown: then only a changed value counts).
    """
    executed: set[str] = set()
    for site in definite_bindings(source):
        if finished or (stopped_at is not None and site.last < stopped_at):
            executed.add(site.name)
    out = []
    for name in names:
        if name not in namespace:
            continue
        if name in executed or before is None or before.changed(name, namespace):
            out.append(name)
    return out
