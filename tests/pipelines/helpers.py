"""Small step notebooks and pipeline files for tests."""

from __future__ import annotations

from pathlib import Path

import nbformat
import yaml


def step_notebook(path: Path, params: str | None, *cells: str) -> Path:
    """A notebook whose first cell (when ``params`` is given) is tagged ``parameters``."""
    nb_cells = []
    if params is not None:
        cell = nbformat.v4.new_code_cell(params)
        cell.metadata["tags"] = ["parameters"]
        nb_cells.append(cell)
    nb_cells += [nbformat.v4.new_code_cell(c) for c in cells]
    nb = nbformat.v4.new_notebook(
        cells=nb_cells,
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
    )
    nbformat.write(nb, path)
    return path


def pipeline_file(path: Path, spec: dict) -> Path:
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def diamond(root: Path, *, sleep: float = 0.0) -> Path:
    """a -> (b, c) -> d; b fails when the pipeline param ``fail`` is true."""
    step_notebook(
        root / "a.ipynb",
        "x = 1",
        'import jupyter_mlops\njupyter_mlops.output("double", x * 2)',
    )
    step_notebook(
        root / "b.ipynb",
        "value = 0\nfail = False\nnap = 0.0",
        "import time\ntime.sleep(nap)",
        'if fail:\n    raise ValueError(f"b was told to fail with value={value}")',
        'import jupyter_mlops\njupyter_mlops.output("plus", value + 1)',
    )
    step_notebook(
        root / "c.ipynb",
        "value = 0\nnap = 0.0",
        "import time\ntime.sleep(nap)",
        'import jupyter_mlops\njupyter_mlops.output("times", value * 10)',
    )
    step_notebook(
        root / "d.ipynb",
        "left = 0\nright = 0",
        'import jupyter_mlops\njupyter_mlops.output("total", left + right)',
    )
    return pipeline_file(
        root / "pipeline.yaml",
        {
            "name": "diamond",
            "params": {"x": 1, "fail": False, "nap": sleep},
            "steps": {
                "a": {"notebook": "a.ipynb", "params": {"x": "${params.x}"}, "outputs": ["double"]},
                "b": {
                    "notebook": "b.ipynb",
                    "params": {
                        "value": "${steps.a.double}",
                        "fail": "${params.fail}",
                        "nap": "${params.nap}",
                    },
                    "outputs": ["plus"],
                },
                "c": {
                    "notebook": "c.ipynb",
                    "params": {"value": "${steps.a.double}", "nap": "${params.nap}"},
                    "outputs": ["times"],
                },
                "d": {
                    "notebook": "d.ipynb",
                    "needs": ["b", "c"],
                    "params": {"left": "${steps.b.plus}", "right": "${steps.c.times}"},
                    "outputs": ["total"],
                },
            },
        },
    )
