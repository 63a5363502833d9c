"""Where step notebooks execute: in kernels on this machine, or on a Dask cluster.

The runner decides what runs, records it and caches it; an executor only turns one
``StepTask`` into an executed notebook. Both executors therefore give the same runs,
outputs and cache keys.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..config import Settings
from ..exceptions import UsageError
from .executor import StepFailure, execute_step_notebook

EXECUTORS = ("local", "dask")


@dataclass(frozen=True)
class StepTask:
    """One step notebook to execute, with everything its kernel needs to know."""

    template: Path
    output: Path
    parameters: dict[str, Any]
    cwd: Path
    #: the step's own variables (its run id, notebook, exit flush), on top of the store's
    env: dict[str, str]
    kernel_name: str | None
    settings: Settings = field(repr=False)


class StepExecutor(Protocol):
    """Runs step notebooks; shared by every pipeline of a sweep."""

    name: str

    def default_parallel(self) -> int:
        """How many steps to run at once when the user did not say."""

    def thread_env(self, parallel: int) -> dict[str, str]:
        """BLAS/OpenMP thread counts for kernels started on this machine."""

    def run(self, task: StepTask, parallel: int) -> StepFailure | None:
        """Execute ``task`` into ``task.output``; None on success, else what failed."""

    def close(self) -> None:
        """Release what the executor holds (a cluster connection)."""


def thread_env(concurrent: int, cores: int | None = None) -> dict[str, str]:
    """Share the cores between kernels running at once instead of oversubscribing them.

    torch, NumPy's BLAS and onnxruntime each start a thread per core; N kernels side by
    side would run N x cores threads. A variable the user set is left alone.
    """
    if concurrent <= 1:
        return {}
    per_kernel = str(max(1, (cores or os.cpu_count() or 1) // concurrent))
    names = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
    return {name: per_kernel for name in names if name not in os.environ}


class LocalExecutor:
    """Kernels started by this process, at most ``parallel`` at a time."""

    name = "local"

    def default_parallel(self) -> int:
        return 1

    def thread_env(self, parallel: int) -> dict[str, str]:
        return thread_env(parallel)

    def run(self, task: StepTask, parallel: int) -> StepFailure | None:
        return execute_step_notebook(
            task.template,
            task.output,
            task.parameters,
            cwd=task.cwd,
            env=task.env,
            kernel_name=task.kernel_name,
        )

    def close(self) -> None:
        pass


def make_executor(name: str = "local", scheduler: str | None = None) -> StepExecutor:
    """The executor called ``name``; ``scheduler`` is a Dask scheduler address.

    >>> make_executor("dask", "tcp://10.0.0.5:8786")  # doctest: +SKIP
    """
    check_executor(name, scheduler)
    if name == "local":
        return LocalExecutor()
    from .dask_executor import DaskExecutor

    assert scheduler is not None
    return DaskExecutor.connect(scheduler)


def check_executor(name: str, scheduler: str | None) -> None:
    """Refuse an unknown executor or a scheduler address that does not go with it."""
    if name not in EXECUTORS:
        raise UsageError(f"unknown executor {name!r} (known: {', '.join(EXECUTORS)})")
    if name == "local":
        if scheduler:
            raise UsageError(
                "--scheduler is the address of a Dask scheduler: use it with --executor dask"
            )
    elif not scheduler:
        raise UsageError("--executor dask needs --scheduler ADDRESS (e.g. tcp://127.0.0.1:8786)")
