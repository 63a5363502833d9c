"""What a cell bound, read from its AST, and which of those values MLflow can hold.

Runs on the kernel's thread after every cell, so it stays cheap: one ``ast.parse`` of the
cell (cached by source), a lookup of each bound name, and for a DataFrame a hash of its
first rows. It never scans the whole namespace and never imports pandas or MLflow.
"""

from __future__ import annotations

import ast
import hashlib
import math
import numbers
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .redact import Redactor

#: Why a secret-looking value is not a param (shown in the ``mlops.skipped`` tag).
MASKED_REASON = "masked: looks like a secret"
#: Rows of a DataFrame hashed for its digest (MLflow's own pandas digest uses the same cap).
DIGEST_ROWS = 10_000


@dataclass
class Captured:
    """The loggable part of what one cell bound."""

    params: dict[str, str | int | float | bool] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    datasets: list[dict[str, Any]] = field(default_factory=list)
    #: name -> why it was not logged
    skipped: dict[str, str] = field(default_factory=dict)


def _target_names(node: ast.AST, out: list[str]) -> None:
    if isinstance(node, ast.Name):
        out.append(node.id)
    elif isinstance(node, (ast.Tuple, ast.List)):
        for elt in node.elts:
            _target_names(elt, out)
    elif isinstance(node, ast.Starred):
        _target_names(node.value, out)


def _walrus_names(node: ast.AST, out: list[str], walrus: bool) -> None:
    if not walrus:
        return  # walking every expression is most of the parse cost; skip when there is no :=
    for sub in ast.walk(node):
        if isinstance(sub, ast.NamedExpr):
            _target_names(sub.target, out)


def _stmt_names(stmts: Iterable[ast.stmt], out: list[str], walrus: bool) -> None:
    """Names bound at module scope by ``stmts``, descending into blocks but not scopes."""
    for stmt in stmts:
        if isinstance(stmt, ast.Assign):
            for target in stmt.targets:
                _target_names(target, out)
            _walrus_names(stmt.value, out, walrus)
        elif isinstance(stmt, (ast.AugAssign, ast.AnnAssign)):
            if isinstance(stmt, ast.AnnAssign) and stmt.value is None:
                continue
            _target_names(stmt.target, out)
        elif isinstance(stmt, (ast.For, ast.AsyncFor)):
            # the loop variable is an iteration counter, not a setting: not captured
            _stmt_names(stmt.body, out, walrus)
            _stmt_names(stmt.orelse, out, walrus)
        elif isinstance(stmt, (ast.With, ast.AsyncWith)):
            _stmt_names(stmt.body, out, walrus)
        elif isinstance(stmt, (ast.If, ast.While)):
            _walrus_names(stmt.test, out, walrus)
            _stmt_names(stmt.body, out, walrus)
            _stmt_names(stmt.orelse, out, walrus)
        elif isinstance(stmt, ast.Try) or type(stmt).__name__ == "TryStar":
            _stmt_names(stmt.body, out, walrus)  # type: ignore[attr-defined]
            for handler in stmt.handlers:  # type: ignore[attr-defined]
                _stmt_names(handler.body, out, walrus)
            _stmt_names(stmt.orelse, out, walrus)  # type: ignore[attr-defined]
            _stmt_names(stmt.finalbody, out, walrus)  # type: ignore[attr-defined]
        elif isinstance(stmt, ast.Expr):
            _walrus_names(stmt.value, out, walrus)


@lru_cache(maxsize=512)
def parse_cell(source: str) -> ast.Module | None:
    """The cell's AST, parsed once per source for every reader of it (never mutate it)."""
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError):
        return None


def cell_tree(source: str, transform: Callable[[str], str] | None = None) -> ast.Module | None:
    """``parse_cell`` of the raw source, else of its ``transform`` (IPython syntax)."""
    tree = parse_cell(source)
    if tree is None and transform is not None:
        python = _transformed(source, transform)
        tree = parse_cell(python) if python is not None else None
    return tree


@lru_cache(maxsize=128)
def _transformed(source: str, transform: Callable[[str], str]) -> str | None:
    try:
        return transform(source)
    except Exception:
        return None


@lru_cache(maxsize=512)
def _names_from_python(source: str) -> tuple[str, ...] | None:
    tree = parse_cell(source)
    if tree is None:
        return None
    out: list[str] = []
    _stmt_names(tree.body, out, ":=" in source)
    # keep first-binding order, drop private names
    return tuple(dict.fromkeys(n for n in out if not n.startswith("_")))


def bound_names(source: str, transform: Callable[[str], str] | None = None) -> tuple[str, ...]:
    """Names a cell binds at top level, in order.

    ``transform`` turns IPython syntax (``%magic``, ``!cmd``) into Python; it is only
    called when the raw source does not parse.

    >>> bound_names("lr = 0.1\\nfor epoch in range(3):\\n    loss = 1 / (epoch + 1)")
    ('lr', 'loss')
    """
    names = _names_from_python(source)
    if names is None and transform is not None:
        python = _transformed(source, transform)
        names = _names_from_python(python) if python is not None else None
    return names or ()


class MetricNamer:
    """Decides whether a name looks like a metric."""

    def __init__(self, pattern: str, extra: Iterable[str] = ()):
        self._regex = re.compile(pattern, re.IGNORECASE)
        self._extra = frozenset(extra)

    def __call__(self, name: str) -> bool:
        return name in self._extra or self._regex.search(name) is not None


def _is_dataframe(value: Any) -> bool:
    cls = type(value)
    return cls.__name__ == "DataFrame" and cls.__module__.startswith("pandas")


def dataset_summary(name: str, df: Any) -> dict[str, Any]:
    """Digest, shape and column types of a pandas DataFrame, for ``mlflow.log_input``."""
    import pandas as pd

    head = df.head(DIGEST_ROWS)
    md5 = hashlib.md5(usedforsecurity=False)
    md5.update(repr(df.shape).encode())
    md5.update(repr([str(c) for c in df.columns]).encode())
    try:
        md5.update(pd.util.hash_pandas_object(head, index=True).values.tobytes())
    except (TypeError, ValueError):
        # unhashable cells (lists, dicts): fall back to their text
        md5.update(head.to_string().encode())
    return {
        "name": name,
        "digest": md5.hexdigest()[:8],
        "rows": int(df.shape[0]),
        "columns": {str(c): str(t) for c, t in df.dtypes.items()},
    }


def snapshot(
    names: Iterable[str],
    namespace: Mapping[str, Any],
    is_metric: Callable[[str], bool],
    max_param_length: int,
    redactor: Redactor | None = None,
) -> Captured:
    """Classify the current values of ``names`` into params, metrics and datasets.

    A value ``redactor`` finds secret is no param: ``skipped`` says it was masked.
    """
    out = Captured()
    for name in names:
        if name not in namespace:
            continue
        value = namespace[name]
        if (
            redactor is not None
            and isinstance(value, str)
            and len(value) <= max_param_length  # a longer string is no param anyway
            and redactor.is_secret(name, value)
        ):
            out.skipped[name] = MASKED_REASON
            redactor.masked += 1
        elif isinstance(value, bool):
            out.params[name] = value
        elif isinstance(value, numbers.Real) and not isinstance(value, bool):
            try:
                number = float(value)
            except (TypeError, ValueError, OverflowError):
                continue
            if is_metric(name):
                if math.isfinite(number):
                    out.metrics[name] = number
                else:
                    out.skipped[name] = f"not a finite number ({number})"
            elif isinstance(value, numbers.Integral):
                out.params[name] = int(value)
            elif math.isfinite(number):
                out.params[name] = number
            else:
                out.skipped[name] = f"not a finite number ({number})"
        elif isinstance(value, str):
            if len(value) <= max_param_length:
                out.params[name] = value
            else:
                out.skipped[name] = f"string of {len(value)} characters (limit {max_param_length})"
        elif _is_dataframe(value):
            try:
                out.datasets.append(dataset_summary(name, value))
            except Exception as err:
                out.skipped[name] = f"DataFrame not summarised: {type(err).__name__}"
    return out
