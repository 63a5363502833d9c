"""An 8-configuration sweep of the standard pipeline (ingest to evaluate): local kernels with
--parallel 2 against a Dask LocalCluster of 2 worker processes.

Both sweeps run with the cache off, so all 32 step notebooks execute each time, and must give
the same outputs for every configuration. The anchor is the local --parallel 2 sweep in the
same run; the cluster's start-up is timed apart. Goal: the Dask sweep within 1.25x of local
(scale-out costs a task round trip per step, not a slower step).
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import fresh_project
from sweep_parallel import training_only

from jupyter_mlops.config import load_settings
from jupyter_mlops.pipelines.sweep import SweepResult, run_sweep

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
GRID = {"lr": ["0.01", "0.02"], "hidden": ["32", "64"], "seed": ["0", "1"]}
GOAL = 1.25


def timed_sweep(spec: Path, **how: Any) -> tuple[float, SweepResult]:
    settings = load_settings(spec.parent.parent)
    start = time.perf_counter()
    result = run_sweep(
        spec,
        {"epochs": "2", "min_accuracy": "0.5"},
        GRID,
        parallel=2,
        use_cache=False,
        settings=settings,
        progress=False,
        **how,
    )
    elapsed = time.perf_counter() - start
    assert result.ok, [str(f) for f in result.failures]
    return elapsed, result


def outcomes(result: SweepResult) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Each configuration's numeric step outputs, keyed by its grid values."""
    rows = {}
    for row in result.rows():
        key = tuple(str(row[k]) for k in GRID)
        rows[key] = {k: v for k, v in row.items() if "." in k}
    return rows


def main() -> None:
    from distributed import LocalCluster

    root = fresh_project("sweep-dask")
    shutil.copytree(TEMPLATES, root / "templates")
    spec = training_only(root / "templates" / "pipeline.yaml")
    local, local_result = timed_sweep(spec)
    started = time.perf_counter()
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        startup = time.perf_counter() - started
        on_dask, dask_result = timed_sweep(
            spec, executor="dask", scheduler=cluster.scheduler_address
        )
    same = outcomes(local_result) == outcomes(dask_result)
    ratio = on_dask / local
    print("sweep of 8 configurations (lr x hidden x seed) of the standard pipeline, cache off")
    print(f"  anchor: local kernels, --parallel 2          {local:6.1f} s")
    print(f"  Dask LocalCluster, 2 worker processes        {on_dask:6.1f} s")
    print(f"  (cluster start-up, not in the ratio           {startup:6.1f} s)")
    print(f"same outputs for every configuration: {'yes' if same else 'NO'}")
    verdict = "met" if ratio <= GOAL else "NOT met"
    print(f"RATIO dask / local: {ratio:.2f}x  (goal <= {GOAL}x: {verdict})")
    print(dask_result.table())
    print(f"project: {root}")
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
