"""Executes one step notebook with papermill in a kernel that knows its step run."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Environment of a step's kernel: its cells nest under the step run, and the kernel does
# not wait at exit for its writer (the writer outlives the kernel and finishes alone).
STEP_ENV_RUN = "JUPYTER_MLOPS_SESSION_RUN_ID"
STEP_ENV_NOTEBOOK = "JUPYTER_MLOPS_NOTEBOOK"


@dataclass
class StepFailure:
    """Where and why a step notebook failed."""

    message: str
    #: papermill's index of the failing cell, from 0, the injected-parameters cell counted
    cell_index: int | None = None
    execution_count: int | None = None
    #: the failing cell's place in the executed notebook, from 1, as a person counts it
    #: there (papermill adds an error banner and an anchor cell in front of it)
    cell_number: int | None = None
    ename: str | None = None
    evalue: str | None = None

    def describe(self) -> str:
        where = ""
        if self.cell_index is not None:
            number = self.cell_number or self.cell_index + 1
            where = f" in cell {number}"
            if self.execution_count is not None:
                where += f" (In [{self.execution_count}])"
        return f"{where}: {self.message}"


def _kernel_manager_class(extra_env: dict[str, str], kernel_log: Path | None = None) -> type:
    """An AsyncKernelManager that starts its kernel with ``extra_env`` on top of ours.

    A per-step class rather than ``os.environ`` so that parallel steps never see each
    other's run ids. The kernel process's own stderr (ipykernel's notices about its TCP
    transport, the interrupt that precedes every shutdown) goes to ``kernel_log`` if given, not the
    terminal or the notebook running the pipeline; what the step's cells print reaches its
    executed notebook through the kernel's messages as before.
    """
    from jupyter_client.manager import AsyncKernelManager

    class StepKernelManager(AsyncKernelManager):
        async def start_kernel(self, **kw: Any) -> None:  # type: ignore[override]
            kw["env"] = {**os.environ, **(kw.get("env") or {}), **extra_env}
            if kernel_log is None:
                await super().start_kernel(**kw)
                return
            fd = os.open(kernel_log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            # the kernel process keeps its own copy of the descriptor; ours closes here
            with os.fdopen(fd, "ab") as log:
                kw["stderr"] = log
                await super().start_kernel(**kw)

    return StepKernelManager


def kernel_log_path(output: Path) -> Path:
    """Where the kernel of the step executed into ``output`` writes its own stderr."""
    return output.with_name(output.stem + ".kernel.log")


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


def _failing_cell_number(executed: Path, execution_count: int | None) -> int | None:
    """Where the cell that raised stands in the saved notebook, counted from 1."""
    try:
        cells = json.loads(executed.read_text(encoding="utf-8"))["cells"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    for number, cell in enumerate(cells, start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        errors = [o for o in cell.get("outputs") or [] if o.get("output_type") == "error"]
        if errors and cell.get("execution_count") == execution_count:
            return number
    return None


def execute_step_notebook(
    template: Path,
    output: Path,
    parameters: dict[str, Any],
    *,
    cwd: Path,
    env: dict[str, str],
    kernel_name: str | None = None,
    timeout: float | None = None,
) -> StepFailure | None:
    """Run ``template`` into ``output``; None on success, else what failed.

    The executed notebook is written even when a cell fails (papermill marks the failing
    cell and saves before raising).
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        papermill.execute_notebook(
            str(template),
            str(output),
            parameters=parameters,
            cwd=str(cwd),
            kernel_name=kernel_name,
            progress_bar=False,
            execution_timeout=timeout,
            kernel_manager_class=_kernel_manager_class(env, kernel_log_path(output)),
        )
    except PapermillExecutionError as err:
        return StepFailure(
            message=f"{err.ename}: {err.evalue}",
            cell_index=err.cell_index,
            execution_count=err.exec_count,
            cell_number=_failing_cell_number(output, err.exec_count),
            ename=err.ename,
            evalue=err.evalue,
        )
    except Exception as err:  # a dead kernel, a timeout, a notebook papermill cannot read
        name = type(err).__name__
        message = str(err).strip().splitlines()[0] if str(err).strip() else name
        if name == "DeadKernelError":
            message = f"the kernel died ({message})"
            tail = _log_tail(kernel_log_path(output))
            if tail:
                message += f"; the end of its log ({kernel_log_path(output)}):\n{tail}"
        return StepFailure(message=f"{name}: {message}", ename=name, evalue=str(err)[:1000])
    return None
