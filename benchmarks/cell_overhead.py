"""Latency that cell tracking adds to each cell, on the kernel's thread.

Runs 1000 distinct trivial cells in an in-process IPython shell without tracking, starts a
tracking session, runs 1000 more and compares the ``run_cell`` times; both sets come after
untimed warm-up cells (and, with tracking, after the session's one-time warm-up). Cells run
back to back while the writer writes to the store, so the added latency is split into the
time the kernel's thread waited for IPython's own history writer and everything else; the
two hooks are also timed alone. A tracked session keeps IPython's history in memory while
cells run back to back and writes it when the kernel is idle (``tracking/history.py``), so
the tracked cells' tail can be shorter than the untracked ones'. The anchor is what logging
each cell synchronously with MLflow's client would cost on the same SQLite store.

    .venv/bin/python benchmarks/cell_overhead.py
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from _common import count_cell_runs, fresh_project, median, percentile

CELLS = 1000
WARMUP_CELLS = 50
ANCHOR_CELLS = 50
ANCHOR_WARMUP = 5
GOAL_MEDIAN_MS = 0.5
GOAL_P99_MS = 2.0


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.3f} ms"


def row(label: str, values: list[float]) -> str:
    return f"  {label:<34} median {ms(median(values))}   p99 {ms(percentile(values, 99))}"


def cell_source(i: int) -> str:
    return f"x_{i} = {i}\nloss = {i}/1000"


class HistoryWait:
    """Time the kernel's thread spends in IPython's ``store_inputs``.

    IPython's history thread holds the lock ``store_inputs`` takes while it commits to its
    SQLite file, so a cell that starts during that commit waits for the disk.
    """

    def __init__(self, shell) -> None:
        self.seconds = 0.0
        manager = shell.history_manager
        original = manager.store_inputs

        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - t0

        manager.store_inputs = timed


def run_cells(shell, waits: HistoryWait, first: int, count: int) -> tuple[list[float], list[float]]:
    """Run ``count`` distinct cells; each one's run_cell time and its history wait."""
    times, waited = [], []
    for i in range(first, first + count):
        source = cell_source(i)
        waits.seconds = 0.0
        t0 = time.perf_counter()
        result = shell.run_cell(source, store_history=True)
        times.append(time.perf_counter() - t0)
        waited.append(waits.seconds)
        if not result.success:
            raise RuntimeError(f"cell {i} failed: {result.error_in_exec!r}")
    return times, waited


def hooks_only(shell, settings, scratch: Path) -> list[float]:
    """The recorder's two hooks called directly, journal write included."""
    from IPython.core.interactiveshell import ExecutionInfo, ExecutionResult

    from jupyter_mlops.tracking.files import FileWatch
    from jupyter_mlops.tracking.journal import JournalPaths, JournalWriter
    from jupyter_mlops.tracking.recorder import CellRecorder

    # a journal outside the project's journal folder: no drainer picks these records up
    writer = JournalWriter(JournalPaths(scratch / "hooks.jsonl"))
    # the file watch as a session installs it: files are part of what a cell records
    files = FileWatch(settings.project_dir, skip=[settings.state_dir]).install()
    recorder = CellRecorder(shell, writer, "hooks-only", settings.tracking, files=files)
    times = []
    for i in range(CELLS):
        shell.user_ns[f"y_{i}"] = i
        shell.user_ns["loss"] = i / 1000
        info = ExecutionInfo(f"y_{i} = {i}\nloss = {i}/1000", True, False, True, None)
        result = ExecutionResult(info)
        result.execution_count = i
        t0 = time.perf_counter()
        recorder.pre_run_cell(info)
        recorder.post_run_cell(result)
        times.append(time.perf_counter() - t0)
    writer.close()
    if recorder.recorded != CELLS:
        raise RuntimeError(f"the recorder recorded {recorder.recorded} of {CELLS} cells")
    return times


def mlflow_sync_anchor(settings) -> list[float]:
    """Per cell: create_run, one log_batch (5 metrics, 5 params), set_terminated."""
    from mlflow.entities import Metric, Param

    from jupyter_mlops import store

    mlf = store.client(settings)
    experiment_id = store.get_or_create_experiment(settings, "anchor: mlflow synchronous")
    times = []
    for i in range(ANCHOR_WARMUP + ANCHOR_CELLS):
        source = cell_source(i)
        t0 = time.perf_counter()
        run = mlf.create_run(
            experiment_id,
            tags={
                "mlops.kind": "anchor",
                "mlflow.source.type": "NOTEBOOK",
                "mlops.execution_count": str(i),
                "mlops.source": source,
            },
        )
        now = int(time.time() * 1000)
        mlf.log_batch(
            run.info.run_id,
            metrics=[Metric(f"metric_{k}", i / 1000 + k, now, i) for k in range(5)],
            params=[Param(f"param_{k}", str(k * i)) for k in range(5)],
        )
        mlf.set_terminated(run.info.run_id)
        times.append(time.perf_counter() - t0)
    return times[ANCHOR_WARMUP:]


def main() -> None:
    project = fresh_project("cell-overhead")
    os.environ["IPYTHONDIR"] = str(project / "ipython")  # keep the shell's history here
    for name in ("JUPYTER_MLOPS_NOTEBOOK", "JPY_SESSION_NAME"):
        os.environ.pop(name, None)

    from IPython.core.interactiveshell import InteractiveShell

    from jupyter_mlops.config import load_settings
    from jupyter_mlops.tracking import api

    settings = load_settings(project)
    shell = InteractiveShell.instance()

    waits = HistoryWait(shell)

    run_cells(shell, waits, 0, WARMUP_CELLS)
    without, waited_without = run_cells(shell, waits, WARMUP_CELLS, CELLS)

    session = api.start_session(shell, settings)
    # steady state, as for the cells without tracking: the session's one-time warm-up (its
    # secret detectors load in a thread, ~0.3 s) and a few cells run first, untimed; what
    # %load_ext itself costs is benchmarks/load_ext_time.py's
    session.recorder.redactor.detector_error  # noqa: B018 - waits for the warm-up
    run_cells(shell, waits, WARMUP_CELLS + CELLS, WARMUP_CELLS)
    tracked, waited_tracked = run_cells(shell, waits, 2 * WARMUP_CELLS + CELLS, CELLS)
    last_cell = time.perf_counter()

    answer = api.flush(timeout=300)
    caught_up = time.perf_counter() - last_cell
    experiment = session.experiment
    api.end_session()
    in_store = count_cell_runs(settings, experiment)

    baseline = median(without)
    added = [t - baseline for t in tracked]
    wait_baseline = median(waited_without)
    added_wait = [w - wait_baseline for w in waited_tracked]
    added_rest = [a - w for a, w in zip(added, added_wait)]
    hooks = hooks_only(shell, settings, project / "scratch")
    anchor = mlflow_sync_anchor(settings)

    added_median = median(added)
    added_p99 = percentile(added, 99)
    anchor_median = median(anchor)
    met = added_median * 1000 < GOAL_MEDIAN_MS and added_p99 * 1000 < GOAL_P99_MS
    ratio = (
        f"{anchor_median / added_median:.0f}x cheaper"
        if added_median > 0
        else "n/a (no measurable added latency)"
    )

    verdict = "met" if met else "NOT met"
    print(f"cell overhead: {CELLS} distinct cells without tracking, then {CELLS} with")
    print(row("run_cell without tracking", without))
    print(row("run_cell with tracking", tracked))
    print(row("added latency per cell", added))
    tail = percentile(tracked, 99) - percentile(without, 99)
    print(f"  p99 with minus p99 without         {ms(tail)}   (the machine's own tail apart)")
    print(f"  goal: median < {GOAL_MEDIAN_MS} ms and p99 < {GOAL_P99_MS} ms: {verdict}")
    print(row("  of it: IPython history lock wait", added_wait))
    print(row("  of it: everything else", added_rest))
    print(row("hooks alone, called directly", hooks))
    print(
        f"anchor: MLflow client per cell, synchronous (create_run + log_batch of 5 metrics "
        f"and 5 params + set_terminated), {ANCHOR_CELLS} cells on the same store"
    )
    print(row("anchor per cell", anchor))
    print(f"RATIO anchor median / added median: {ratio}")
    print(
        f"store: {in_store} of {CELLS + WARMUP_CELLS} cell runs reached the store "
        f"(flush answered {caught_up:.1f} s after the last cell: {answer})"
    )
    print(f"project: {project}")


if __name__ == "__main__":
    main()
