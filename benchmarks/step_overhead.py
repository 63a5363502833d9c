"""Per-step overhead of the pipeline runner against raw papermill on the same notebook.

Each repetition executes one small parameterised notebook twice, in alternating order:
``papermill.execute_notebook`` directly (the anchor), and as the single step of a pipeline
through ``run_pipeline`` with the cache off (a tracked pipeline run and step run, the
executed notebook logged as an artifact). Goal: runner / papermill <= 1.15.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
import papermill
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import fresh_project, median

from jupyter_mlops.config import load_settings
from jupyter_mlops.pipelines.runner import run_pipeline

REPS = 7
GOAL = 1.15


def make_notebook(path: Path) -> None:
    params = nbformat.v4.new_code_cell("n = 1000")
    params.metadata["tags"] = ["parameters"]
    cells = [
        params,
        nbformat.v4.new_code_cell("total = sum(i * i for i in range(n))"),
        nbformat.v4.new_code_cell("import jupyter_mlops\njupyter_mlops.output('total', total)"),
    ]
    nb = nbformat.v4.new_notebook(
        cells=cells,
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
    )
    nbformat.write(nb, path)


def main() -> None:
    root = fresh_project("step-overhead")
    notebook = root / "step.ipynb"
    make_notebook(notebook)
    spec = root / "pipeline.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "name": "overhead",
                "params": {"n": 1000},
                "steps": {
                    "step": {
                        "notebook": "step.ipynb",
                        "params": {"n": "${params.n}"},
                        "outputs": ["total"],
                    }
                },
            }
        )
    )
    settings = load_settings(root)
    # warm both paths once: imports, kernel spec lookup, store schema
    papermill.execute_notebook(str(notebook), str(root / "warm.ipynb"), progress_bar=False)
    run_pipeline(spec, settings=settings, use_cache=False, progress=False)

    raw, ours = [], []
    for i in range(REPS):
        order = ("raw", "ours") if i % 2 == 0 else ("ours", "raw")
        for which in order:
            start = time.perf_counter()
            if which == "raw":
                papermill.execute_notebook(
                    str(notebook),
                    str(root / f"raw-{i}.ipynb"),
                    parameters={"n": 1000},
                    cwd=str(root),
                    progress_bar=False,
                )
                raw.append(time.perf_counter() - start)
            else:
                run_pipeline(spec, settings=settings, use_cache=False, progress=False)
                ours.append(time.perf_counter() - start)
    ratio = median(ours) / median(raw)
    print(f"step overhead: one 3-cell notebook, {REPS} repetitions each, alternating")
    print(f"  anchor: papermill.execute_notebook   median {median(raw):.3f} s")
    print(f"  run_pipeline (one step, no cache)    median {median(ours):.3f} s")
    print(
        f"RATIO runner / papermill: {ratio:.2f}x  "
        f"(goal <= {GOAL}x: {'met' if ratio <= GOAL else 'NOT met'})"
    )
    print(f"project: {root}")


if __name__ == "__main__":
    main()
