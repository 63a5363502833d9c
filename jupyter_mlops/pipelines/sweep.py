"""Sweeps: a grid of parameter values, one pipeline run each, run side by side."""

from __future__ import annotations

import contextlib
import itertools
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import Settings
from ..exceptions import MlopsError
from ..table import format_rows
from .executors import StepExecutor, make_executor
from .runner import PipelineFailed, PipelineResult, run_pipeline
from .spec import PipelineSpec, load_pipeline


def parse_sweep(items: list[str]) -> dict[str, list[str]]:
    """``["lr=0.01,0.1", "epochs=5,10"]`` -> ``{"lr": ["0.01", "0.1"], "epochs": [...]}``."""
    grid: dict[str, list[str]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        choices = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not key or not choices:
            raise MlopsError(f"--sweep {item!r}: expected name=value1,value2,...")
        grid[key.strip()] = choices
    return grid


def expand_grid(grid: dict[str, list[str]]) -> list[dict[str, str]]:
    keys = list(grid)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]


@dataclass
class SweepResult:
    """Every configuration's pipeline run, and a comparison of their params and outputs."""

    sweep_id: str
    grid: dict[str, list[str]]
    runs: list[PipelineResult]
    failures: list[PipelineFailed]

    @property
    def ok(self) -> bool:
        return not self.failures

    def rows(self) -> list[dict[str, Any]]:
        out = []
        for result in [*self.runs, *(f.result for f in self.failures)]:
            row: dict[str, Any] = {"run_id": result.run_id, "status": result.status}
            row.update({k: result.params.get(k) for k in self.grid})
            row.update(result.numeric_outputs())
            out.append(row)
        return out

    def table(self) -> str:
        rows = self.rows()
        if not rows:
            return "no runs"
        header = list(dict.fromkeys(k for r in rows for k in r))

        def show(v: Any) -> str:
            return f"{v:.4g}" if isinstance(v, float) else ("" if v is None else str(v))

        return format_rows(header, [[show(r.get(k)) for k in header] for r in rows])


def run_sweep(
    pipeline: str | Path | PipelineSpec,
    params: dict[str, str] | None,
    grid: dict[str, list[str]],
    *,
    parallel: int | None = None,
    use_cache: bool = True,
    settings: Settings | None = None,
    progress: bool = True,
    kernel_name: str | None = None,
    executor: str | StepExecutor = "local",
    scheduler: str | None = None,
) -> SweepResult:
    """One pipeline run per grid point; at most ``parallel`` step notebooks at once.

    ``executor="dask"`` runs every configuration's steps on the cluster at ``scheduler``.
    """
    if isinstance(executor, str):
        with contextlib.closing(make_executor(executor, scheduler)) as owned:
            return run_sweep(
                pipeline,
                params,
                grid,
                parallel=parallel,
                use_cache=use_cache,
                settings=settings,
                progress=progress,
                kernel_name=kernel_name,
                executor=owned,
            )
    parallel = parallel or executor.default_parallel()
    spec = pipeline if isinstance(pipeline, PipelineSpec) else load_pipeline(pipeline)
    for key in grid:
        if key not in spec.params:
            known = ", ".join(sorted(spec.params)) or "none"
            raise MlopsError(f"--sweep {key}: not a pipeline param (known: {known})")
    configs = expand_grid(grid)
    sweep_id = uuid.uuid4().hex[:12]
    slots = threading.Semaphore(max(1, parallel))
    outcome: list[PipelineResult | PipelineFailed | None] = [None] * len(configs)

    def one(index: int, config: dict[str, str]) -> None:
        try:
            result = run_pipeline(
                spec,
                {**(params or {}), **config},
                parallel=parallel,
                use_cache=use_cache,
                settings=settings,
                progress=progress,
                kernel_name=kernel_name,
                slots=slots,
                tags={"mlops.sweep_id": sweep_id},
                executor=executor,
            )
            outcome[index] = result
        except PipelineFailed as err:
            outcome[index] = err

    with ThreadPoolExecutor(max_workers=max(1, min(len(configs), 8))) as pool:
        for future in [pool.submit(one, i, c) for i, c in enumerate(configs)]:
            future.result()
    runs = [o for o in outcome if isinstance(o, PipelineResult)]
    failures = [o for o in outcome if isinstance(o, PipelineFailed)]
    return SweepResult(sweep_id=sweep_id, grid=grid, runs=runs, failures=failures)
