"""From a messy notebook to the few cells that make one value: a template to run with papermill.

The slice holds the cell runs of a name's lineage in the order they ran (not the order the
cells stand in the notebook, and without the dead cells), the params they set by a plain
literal assignment lifted into one ``parameters`` cell, and a last cell publishing the name
with ``jupyter_mlops.output``: a JSON value as itself, anything else as ``NAME_digest``
(``value_digest``), so a papermill run of the template can be checked against the original.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import re
from pathlib import Path
from typing import Any

from ..config import Settings
from ..exceptions import MlopsError
from .lineage import Lineage

_TEMPLATE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


def value_digest(value: Any) -> str:
    """A sha256 of a value's content: arrays and frames by their data, others pickled.

    >>> jupyter_mlops.value_digest(df)  # doctest: +SKIP
    'sha256:3f2a…'
    """
    h = hashlib.sha256()
    kind = type(value).__module__.split(".")[0], type(value).__name__
    if kind == ("numpy", "ndarray"):
        h.update(f"{value.dtype}{value.shape}".encode())
        h.update(value.tobytes())
    elif kind[0] == "pandas" and kind[1] in ("DataFrame", "Series"):
        import pandas as pd

        h.update(repr(list(getattr(value, "columns", [value.name]))).encode())
        h.update(pd.util.hash_pandas_object(value, index=True).values.tobytes())
    else:
        h.update(pickle.dumps(value, protocol=4))
    return "sha256:" + h.hexdigest()


def _json_value(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


def _cell(source: str, **metadata: Any) -> Any:
    import nbformat

    cell = nbformat.v4.new_code_cell(source)  # type: ignore[no-untyped-call]
    cell.metadata.update(metadata)
    return cell


def slice_notebook(
    settings: Settings,
    found: Lineage,
    template: str,
    value: Any,
    *,
    force: bool = False,
) -> tuple[Path, list[str]]:
    """Write ``templates/TEMPLATE.ipynb`` from ``found``; return its path and the params."""
    import nbformat

    from ..pipelines.templating import literal_assignments

    if not _TEMPLATE.match(template):
        raise MlopsError(f"template name {template!r}: use letters, digits, '_' and '-'")
    target = settings.resolve_inside(Path("templates") / f"{template}.ipynb")
    if target.exists() and not force:
        raise MlopsError(f"{settings.relative(target)} exists; pass --force to replace it")
    params = set(found.params)
    # a param set in one run only is lifted; set twice, its assignments stay where they ran
    setters: dict[str, int] = {}
    for run in found.runs:
        for name in params & set(run.written):
            setters[name] = setters.get(name, 0) + 1
    liftable = {name for name, n in setters.items() if n == 1}
    defaults: dict[str, Any] = {}
    cells = []
    for run in found.runs:
        lines = run.source.splitlines()
        drop: set[int] = set()
        for name, literal, first, last in literal_assignments(run.source, liftable):
            defaults[name] = literal
            drop.update(range(first - 1, last))
        kept = "\n".join(line for i, line in enumerate(lines) if i not in drop).strip("\n")
        if kept.strip():
            cells.append(_cell(kept, mlops={"record_id": run.record_id}))
    name = found.target
    if _json_value(value):
        publish = f"import jupyter_mlops\n\njupyter_mlops.output({name!r}, {name})"
    else:
        publish = (
            "import jupyter_mlops\n\n"
            f"jupyter_mlops.output({name + '_digest'!r}, jupyter_mlops.value_digest({name}))"
        )
    params_cell = _cell(
        "\n".join(f"{k} = {v!r}" for k, v in defaults.items()) or "# no params",
        tags=["parameters"],
    )
    nb = nbformat.v4.new_notebook(  # type: ignore[no-untyped-call]
        cells=[params_cell, *cells, _cell(publish)],
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "mlops": {"sliced_from": name, "runs": [r.record_id for r in found.runs]},
        },
    )
    nbformat.validate(nb)
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(target))  # type: ignore[no-untyped-call]
    return target, list(defaults)
