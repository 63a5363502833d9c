"""From exploration to pipeline: turn a notebook into a template with a ``parameters`` cell.

The params a session tracked that the notebook sets with a plain literal assignment
(``lr = 0.01``) move into one cell tagged ``parameters``; papermill then injects new values
after it, and no later cell overwrites them.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

from ..config import Settings
from ..exceptions import MlopsError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


def literal_assignments(source: str, names: set[str]) -> list[tuple[str, Any, int, int]]:
    """(name, value, first line, last line) of top-level ``name = literal`` statements."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    found = []
    for stmt in tree.body:
        if (
            isinstance(stmt, ast.Assign)
            and len(stmt.targets) == 1
            and isinstance(stmt.targets[0], ast.Name)
            and stmt.targets[0].id in names
        ):
            try:
                value = ast.literal_eval(stmt.value)
            except ValueError:
                continue
            end = stmt.end_lineno or stmt.lineno
            found.append((stmt.targets[0].id, value, stmt.lineno, end))
    return found


def make_template(
    settings: Settings,
    notebook: Path,
    name: str,
    params: dict[str, Any],
    *,
    force: bool = False,
) -> tuple[Path, list[str]]:
    """Write ``templates/<name>.ipynb``; return its path and the parameter names."""
    if not _NAME.match(name):
        raise MlopsError(f"template name {name!r}: use letters, digits, '_' and '-'")
    if not notebook.is_file():
        raise MlopsError(f"{notebook}: the notebook file does not exist (save it first)")
    target = settings.resolve_inside(Path("templates") / f"{name}.ipynb")
    if target.exists() and not force:
        raise MlopsError(f"{settings.relative(target)} exists; pass --force to replace it")
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    defaults: dict[str, Any] = {}
    cells = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            cells.append(cell)
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else source
        tags = (cell.get("metadata") or {}).get("tags", [])
        if "parameters" in tags or "injected-parameters" in tags:
            continue
        if source.lstrip().startswith("%mlops template"):
            continue  # the template must not rewrite itself when it runs
        lines = source.splitlines()
        drop: set[int] = set()
        for pname, value, first, last in literal_assignments(source, set(params)):
            defaults[pname] = value
            drop.update(range(first - 1, last))
        kept = "\n".join(line for i, line in enumerate(lines) if i not in drop).strip("\n")
        if drop and not kept.strip():
            continue
        cells.append({**cell, "source": kept, "outputs": [], "execution_count": None})
    if not defaults:
        raise MlopsError(
            "no tracked param is set by a plain assignment (like lr = 0.01) in this notebook; "
            "nothing to turn into a template parameter"
        )
    param_cell: dict[str, Any] = {
        "cell_type": "code",
        "execution_count": None,
        "id": "parameters",
        "metadata": {"tags": ["parameters"]},
        "outputs": [],
        "source": "\n".join(f"{k} = {v!r}" for k, v in defaults.items()),
    }
    # after the cells that load extensions, before everything else
    at = 0
    while at < len(cells) and str(cells[at].get("source", "")).lstrip().startswith("%load_ext"):
        at += 1
    cells.insert(at, param_cell)
    nb["cells"] = cells
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(nb, indent=1) + "\n", encoding="utf-8")
    return target, list(defaults)
