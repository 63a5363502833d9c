"""A 4-configuration sweep of the standard pipeline (ingest to evaluate), --parallel 2
against sequential.

Both sweeps run with the cache off so every step of every configuration executes. The
anchor is the sequential sweep (--parallel 1) in the same run. Goal: parallel <= 0.6x.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import fresh_project

from jupyter_mlops.config import load_settings
from jupyter_mlops.pipelines.sweep import run_sweep

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
GRID = {"lr": ["0.01", "0.02"], "hidden": ["32", "64"]}
GOAL = 0.6


def timed_sweep(spec: Path, parallel: int) -> tuple[float, str]:
    settings = load_settings(spec.parent.parent)
    start = time.perf_counter()
    result = run_sweep(
        spec,
        {"epochs": "2", "min_accuracy": "0.5"},
        GRID,
        parallel=parallel,
        use_cache=False,
        settings=settings,
        progress=False,
    )
    elapsed = time.perf_counter() - start
    assert result.ok, [str(f) for f in result.failures]
    return elapsed, result.table()


def training_only(spec: Path) -> Path:
    """The standard pipeline up to evaluate: a sweep compares models, it does not release them."""
    import yaml

    data = yaml.safe_load(spec.read_text())
    data["steps"] = {
        k: v
        for k, v in data["steps"].items()
        if k not in ("package", "register", "deploy", "monitor")
    }
    target = spec.with_name("train_only.yaml")
    target.write_text(yaml.safe_dump(data, sort_keys=False))
    return target


def main() -> None:
    root = fresh_project("sweep-parallel")
    shutil.copytree(TEMPLATES, root / "templates")
    spec = training_only(root / "templates" / "pipeline.yaml")
    sequential, _ = timed_sweep(spec, 1)
    parallel, table = timed_sweep(spec, 2)
    ratio = parallel / sequential
    print("sweep of 4 configurations (lr x hidden) of the standard pipeline, cache off")
    print(f"  anchor: sequential (--parallel 1)   {sequential:6.1f} s")
    print(f"  --parallel 2                        {parallel:6.1f} s")
    print(
        f"RATIO parallel / sequential: {ratio:.2f}x  "
        f"(goal <= {GOAL}x: {'met' if ratio <= GOAL else 'NOT met'})"
    )
    print(table)
    print(f"project: {root}")


if __name__ == "__main__":
    main()
