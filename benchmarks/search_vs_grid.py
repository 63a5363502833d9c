"""Optuna's search against a grid sweep of the same budget, on the standard pipeline.

The standard pipeline up to evaluate (a search compares models, it does not release them),
with few epochs so a trial takes seconds. Both get the same budget of trials over learning
rate and hidden width, in the same project, with the cache on (ingest and validate run once
for both): the grid (the anchor) takes every point of a 3 x 3 lattice of the ranges,
``--search optuna`` draws its 9 trials with TPE. Printed: each one's best test accuracy and
its wall time, and the ratios.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import fresh_project
from sweep_parallel import training_only

from jupyter_mlops.config import load_settings
from jupyter_mlops.pipelines.search import search
from jupyter_mlops.pipelines.sweep import run_sweep

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
LR = (1e-3, 1e-1)
HIDDEN = (16, 128)
FIXED = {"epochs": "3", "min_accuracy": "0.0"}


def lattice(low: float, high: float, n: int, log: bool) -> list[float]:
    if log:
        return [
            math.exp(math.log(low) + i * (math.log(high) - math.log(low)) / (n - 1))
            for i in range(n)
        ]
    return [low + i * (high - low) / (n - 1) for i in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--side", type=int, default=3, help="grid points per param (budget side^2)")
    parser.add_argument("--parallel", type=int, default=2)
    args = parser.parse_args()
    budget = args.side**2
    root = fresh_project("search-vs-grid")
    shutil.copytree(TEMPLATES, root / "templates")
    spec = training_only(root / "templates" / "pipeline.yaml")
    settings = load_settings(root)

    grid = {
        "lr": [f"{v:.5g}" for v in lattice(*LR, args.side, log=True)],
        "hidden": [str(round(v)) for v in lattice(*HIDDEN, args.side, log=False)],
    }
    start = time.perf_counter()
    swept = run_sweep(spec, FIXED, grid, parallel=args.parallel, settings=settings, progress=False)
    grid_s = time.perf_counter() - start
    grid_best = max(
        r["evaluate.test_accuracy"] for r in swept.rows() if "evaluate.test_accuracy" in r
    )

    start = time.perf_counter()
    found = search(
        spec, trials=budget, objective="evaluate.test_accuracy:max", params=FIXED,
        space={"lr": f"loguniform({LR[0]}, {LR[1]})", "hidden": f"int({HIDDEN[0]}, {HIDDEN[1]})"},
        parallel=args.parallel, settings=settings, progress=False, seed=0,
    )  # fmt: skip
    search_s = time.perf_counter() - start
    assert found.best is not None and found.best.value is not None
    print(f"standard pipeline to evaluate, epochs {FIXED['epochs']}, budget {budget} trials, "
          f"--parallel {args.parallel}, cache on")  # fmt: skip
    print(f"  anchor: grid sweep {args.side}x{args.side}   best test_accuracy "
          f"{grid_best:.4f}   {grid_s:6.1f} s")  # fmt: skip
    print(f"  --search optuna (TPE)   best test_accuracy {found.best.value:.4f}   "
          f"{search_s:6.1f} s   params {found.best.params}")  # fmt: skip
    pruned = sum(t.state == "PRUNED" for t in found.trials)
    print(f"  trials: {len(found.trials)} ({pruned} pruned)")
    print(f"RATIO best accuracy search / grid: {found.best.value / grid_best:.3f}x; "
          f"wall time search / grid: {search_s / grid_s:.2f}x")  # fmt: skip
    print(f"project: {root}")


if __name__ == "__main__":
    main()
