"""Sustained rate at which the drainer writes cell records into the SQLite store.

Writes a session journal of 1000 cell records shaped like the ones ``CellRecorder`` appends
(5 params, 5 metrics each), then times one ``JournalDrainer.drain()`` over it, in this
process. The anchor is MLflow's fluent API logging each cell synchronously as a nested run
on the same store.

    .venv/bin/python benchmarks/write_rate.py
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid

from _common import count_cell_runs, fresh_project

CELLS = 1000
ANCHOR_CELLS = 100
ANCHOR_WARMUP = 5
GOAL_RUNS_PER_SECOND = 25.0


def cell_source(i: int) -> str:
    return (
        f"lr = {0.001 * (i % 7 + 1)}\nbatch_size = {32 * (i % 4 + 1)}\noptimizer = 'adam'\n"
        f"epochs = {i % 10 + 1}\nseed = {i}\nloss = {1 / (i + 1)}\nval_loss = {1.1 / (i + 1)}\n"
        f"accuracy = {i / (i + 1)}\nval_accuracy = {i / (i + 2)}\nf1 = {i / (i + 3)}"
    )


def session_start(session_id: str, now: int) -> dict:
    return {
        "type": "session_start",
        "session": session_id,
        "time": now,
        "experiment": "interactive",
        "notebook": None,
        "run_name": time.strftime("session %Y-%m-%d %H:%M:%S"),
        "session_run_id": None,
        "parent_run_id": None,
        "tags": {"mlops.kernel_pid": os.getpid()},
    }


def cell_record(session_id: str, i: int, now: int) -> dict:
    source = cell_source(i)
    start, end = now + i * 10, now + i * 10 + 7
    return {
        "type": "cell",
        "id": uuid.uuid4().hex,
        "session": session_id,
        "start": start,
        "end": end,
        "time": end,
        "duration_s": 0.007,
        "execution_count": i + 1,
        "cell_id": None,
        "source": source,
        "source_hash": hashlib.sha1(source.encode()).hexdigest(),
        "status": "FINISHED",
        "params": {
            "lr": 0.001 * (i % 7 + 1),
            "batch_size": 32 * (i % 4 + 1),
            "optimizer": "adam",
            "epochs": i % 10 + 1,
            "seed": i,
        },
        "metrics": [
            ["loss", 1 / (i + 1), i, end],
            ["val_loss", 1.1 / (i + 1), i, end],
            ["accuracy", i / (i + 1), i, end],
            ["val_accuracy", i / (i + 2), i, end],
            ["f1", i / (i + 3), i, end],
        ],
    }


def fluent_anchor(settings) -> float:
    """Cell runs per second for MLflow's fluent API, one nested run per cell."""
    import mlflow

    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_experiment("anchor: mlflow fluent")
    elapsed = 0.0
    with mlflow.start_run(run_name="anchor session"):
        for i in range(ANCHOR_WARMUP + ANCHOR_CELLS):
            record = cell_record("anchor", i, int(time.time() * 1000))
            t0 = time.perf_counter()
            mlflow.start_run(nested=True, run_name=f"[{i + 1}] cell")
            mlflow.log_params(record["params"])
            mlflow.log_metrics({name: value for name, value, _, _ in record["metrics"]}, step=i)
            mlflow.set_tags(
                {
                    "mlops.kind": "anchor",
                    "mlops.source_hash": record["source_hash"],
                    "mlops.source": record["source"],
                }
            )
            mlflow.end_run()
            if i >= ANCHOR_WARMUP:
                elapsed += time.perf_counter() - t0
    return ANCHOR_CELLS / elapsed


def main() -> None:
    project = fresh_project("write-rate")

    from jupyter_mlops import store
    from jupyter_mlops.config import load_settings
    from jupyter_mlops.tracking.drainer import JournalDrainer
    from jupyter_mlops.tracking.journal import JournalPaths, JournalWriter

    settings = load_settings(project)
    session_id = uuid.uuid4().hex
    paths = JournalPaths.for_session(settings.journal_dir, session_id)
    writer = JournalWriter(paths)
    now = int(time.time() * 1000)
    writer.append(session_start(session_id, now))
    for i in range(CELLS):
        writer.append(cell_record(session_id, i, now))
    writer.close()

    # schema creation and the client's first connection are not part of the rate
    store.client(settings).search_experiments(max_results=1)

    drainer = JournalDrainer(settings, paths)
    t0 = time.perf_counter()
    applied = drainer.drain()
    seconds = time.perf_counter() - t0
    in_store = count_cell_runs(settings, "interactive")
    rate = CELLS / seconds

    anchor = fluent_anchor(settings)
    verdict = "met" if rate >= GOAL_RUNS_PER_SECOND else "NOT met"
    print(f"write rate: one drain of a journal with {CELLS} cell records (5 params, 5 metrics)")
    print(f"  drained {applied} records in {seconds:.2f} s; {in_store} cell runs in the store")
    print(f"  jupyter-mlops drainer           {rate:7.1f} cell runs/s")
    print(f"  goal: >= {GOAL_RUNS_PER_SECOND:g} cell runs/s: {verdict}")
    print(
        f"anchor: MLflow fluent API, one synchronous nested run per cell "
        f"({ANCHOR_CELLS} cells, same store)"
    )
    print(f"  mlflow fluent                   {anchor:7.1f} cell runs/s")
    print(f"RATIO drainer / fluent: {rate / anchor:.2f}x")
    print(f"project: {project}")


if __name__ == "__main__":
    main()
