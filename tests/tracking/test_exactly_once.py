"""Exactly once: the writer killed at random points, during batches and during a backlog
replay after the store was locked, still leaves one complete run per record."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jupyter_mlops.tracking.journal import JournalPaths, JournalWriter
from tests.conftest import drain, runs_of_kind, settings_for, wait_for_more_runs

CELLS = 150
KILLS = 24
SESSION = "a" * 32


def _records() -> list[dict]:
    now = int(time.time() * 1000) - CELLS * 1000
    out: list[dict] = [
        {
            "type": "session_start",
            "session": SESSION,
            "time": now,
            "experiment": "killed-writer.ipynb",
            "notebook": None,
            "run_name": "session",
            "tags": {},
        }
    ]
    for i in range(CELLS):
        start = now + i * 1000
        source = f"p_{i} = {i}\nname_{i} = 'v{i}'\nloss = {i} / 1000"
        if i % 10 == 0:
            source += "\n# " + "long " * 2000  # past the tag limit: an artifact too
        rec = {
            "type": "cell",
            "id": f"{i:032x}",
            "session": SESSION,
            "start": start,
            "end": start + 5,
            "time": start + 5,
            "duration_s": 0.005,
            "execution_count": i + 1,
            "cell_id": f"cell-{i}",
            "source": source,
            "source_hash": f"{i:040x}",
            "status": "FINISHED",
            "params": {f"p_{i}": i, f"name_{i}": f"v{i}", "shared": "x"},
            "metrics": [["loss", i / 1000, i, start + 5], ["acc", 1 - i / 1000, i, start + 5]],
        }
        if i % 7 == 0:
            rec["datasets"] = [
                {"name": f"df_{i}", "digest": f"{i:08x}", "rows": 3, "columns": {"a": "int64"}}
            ]
        out.append(rec)
    out.append({"type": "session_end", "session": SESSION, "time": now + CELLS * 1000})
    return out


def _start_writer(project: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter_mlops.tracking.drainer",
            "--project",
            str(project),
            "--session",
            SESSION,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=project,
    )


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)


@pytest.mark.slow
@pytest.mark.timeout(1800)  # 24 writer start-ups (each imports MLflow) at nice 10 on busy cores
def test_writer_killed_at_random_points_leaves_one_complete_run_per_cell(project: Path) -> None:
    settings = settings_for(project)
    db = settings.state_dir / "mlflow.db"
    # the store is made here, at normal priority: killing a writer while it makes the store
    # is tests/test_store_creation.py's, and at nice 10 beside busy loops making it alone
    # can take minutes
    from jupyter_mlops import store

    store.client(settings)
    store.forget_clients()
    paths = JournalPaths.for_session(settings.journal_dir, SESSION)
    writer = JournalWriter(paths)
    for record in _records():
        writer.append(record)
    writer.close()
    rng = random.Random(13)
    kills = 0
    seen = 0
    while kills < KILLS:
        proc = _start_writer(project)
        try:
            if kills == KILLS // 2:
                # a backlog replay: the store is locked while the writer retries, then
                # it is released and the writer is killed while it catches up
                lock = sqlite3.connect(db, timeout=30)
                lock.execute("BEGIN EXCLUSIVE")
                time.sleep(3)  # the lock is the fault: it must last while the writer retries
                lock.rollback()
                lock.close()
            seen = wait_for_more_runs(db, proc, seen)
            if proc.poll() is not None:
                break  # everything written before the kill came
            time.sleep(rng.uniform(0, 0.25))
        finally:
            _kill(proc)
        kills += 1
    assert kills >= 20, f"only {kills} kills landed while the writer was writing"
    drain(project)

    [session] = runs_of_kind(project, "session", "killed-writer.ipynb")
    assert session.info.status == "FINISHED"
    cells = runs_of_kind(project, "cell", "killed-writer.ipynb")
    ids = [c.data.tags["mlops.record_id"] for c in cells]
    assert len(ids) == len(set(ids)), "a record was written twice"
    assert sorted(ids) == [f"{i:032x}" for i in range(CELLS)], "a record was lost"
    client_runs = {c.data.tags["mlops.record_id"]: c for c in cells}
    for i in range(CELLS):
        run = client_runs[f"{i:032x}"]
        assert run.info.status == "FINISHED", (i, run.info.status)
        assert run.data.params == {f"p_{i}": str(i), f"name_{i}": f"v{i}", "shared": "x"}
        assert set(run.data.metrics) == {"loss", "acc", "mlops.duration_s"}
        assert run.data.tags["mlflow.parentRunId"] == session.info.run_id
        if i % 7 == 0:
            assert [d.dataset.name for d in run.inputs.dataset_inputs] == [f"df_{i}"]
        if i % 10 == 0:
            from jupyter_mlops import store

            names = [f.path for f in store.client(settings).list_artifacts(run.info.run_id)]
            assert names == ["cell_source.py"]
    # the session keeps one history point per cell and metric, none twice
    from jupyter_mlops import store

    history = store.client(settings).get_metric_history(session.info.run_id, "loss")
    assert sorted(m.step for m in history) == list(range(CELLS))
    assert not list(settings.journal_dir.glob("*.jsonl")), json.dumps(
        [p.name for p in settings.journal_dir.iterdir()]
    )
