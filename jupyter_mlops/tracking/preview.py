"""What a cell run's row shows: the cell's own label, or its most telling line.

A user names a cell with a comment ``# mlops: <label>``. Without one, the row shows the
first statement that does something: imports, comments, blank lines, docstrings, bare
names and IPython magics are passed over, so ``import ...`` headers no longer make every
row look alike. A cell of only imports reads ``import numpy, pandas, sklearn.datasets``.
"""

from __future__ import annotations

import ast
import re
from functools import lru_cache

#: the longest preview a row gets
PREVIEW_LENGTH = 120

_LABEL = re.compile(r"^[ \t]*#[ \t]*mlops:[ \t]*(\S.*?)[ \t]*$", re.IGNORECASE | re.MULTILINE)
_MAGIC = re.compile(r"^\s*[%!]")


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= PREVIEW_LENGTH else text[: PREVIEW_LENGTH - 1] + "…"


def cell_label(source: str) -> str | None:
    """The label a ``# mlops: <label>`` comment gives the cell, if any.

    >>> cell_label("# mlops: train the baseline\\nmodel.fit(X, y)")
    'train the baseline'
    """
    found = _LABEL.search(source)
    return _shorten(found.group(1)) if found else None


def _trivial(stmt: ast.stmt) -> bool:
    if isinstance(stmt, (ast.Import, ast.ImportFrom, ast.Pass)):
        return True
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, (ast.Constant, ast.Name))


def _statement_text(stmt: ast.stmt, lines: list[str]) -> str:
    first = stmt.lineno - 1
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        decorated = min([d.lineno for d in stmt.decorator_list] + [stmt.lineno])
        return lines[decorated - 1 if not stmt.decorator_list else stmt.lineno - 1]
    body = getattr(stmt, "body", None)
    if isinstance(body, list) and body:  # a compound statement: its header
        return " ".join(lines[first : max(first + 1, body[0].lineno - 1)])
    last = stmt.end_lineno or stmt.lineno
    return " ".join(lines[first:last])


def _imports(statements: list[ast.stmt]) -> str | None:
    modules: list[str] = []
    for stmt in statements:
        if isinstance(stmt, ast.Import):
            modules += [alias.name for alias in stmt.names]
        elif isinstance(stmt, ast.ImportFrom):
            modules.append("." * stmt.level + (stmt.module or ""))
    unique = list(dict.fromkeys(m for m in modules if m))
    return "import " + ", ".join(unique) if unique else None


def _by_lines(lines: list[str]) -> str:
    meaningful = [ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    for line in meaningful:
        if not _MAGIC.match(line) and not re.match(r"\s*(import|from)\s", line):
            return line
    if meaningful:
        return meaningful[0]
    return next((ln for ln in lines if ln.strip()), "")


@lru_cache(maxsize=1024)
def telling_line(source: str) -> str:
    """The line of ``source`` that tells this cell from the others, at most 120 characters.

    >>> telling_line("import torch\\n# the model\\nmodel = Net(\\n    hidden=64)\\nmodel")
    'model = Net( hidden=64)'
    """
    lines = source.splitlines()
    # magics are not Python: blank them, keeping the line numbers
    code = "\n".join("" if _MAGIC.match(ln) else ln for ln in lines)
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return _shorten(_by_lines(lines))
    for stmt in tree.body:
        if not _trivial(stmt):
            return _shorten(_statement_text(stmt, lines))
    imports = _imports(tree.body)
    if imports:
        return _shorten(imports)
    return _shorten(_by_lines(lines))


def describe(source: str) -> tuple[str, str | None]:
    """A row's preview and label: the label when the cell has one, else its telling line."""
    label = cell_label(source)
    return (label if label else telling_line(source)), label
