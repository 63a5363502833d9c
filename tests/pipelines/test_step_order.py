"""A pipeline run lists its steps in the order they can run (its DAG), not by name, with the
seconds each took: as run, and as answered wholly from the cache."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from jupyter_mlops.pipelines.history import pipeline_runs
from jupyter_mlops.pipelines.runner import run_pipeline
from tests.conftest import WAIT_S, drain, settings_for, wait_until
from tests.pipelines.helpers import pipeline_file, step_notebook

pytestmark = pytest.mark.slow


def test_steps_come_in_dag_order_with_their_durations(project: Path) -> None:
    step_notebook(
        project / "z.ipynb", "x = 1", 'import jupyter_mlops\njupyter_mlops.output("y", x + 1)'
    )
    step_notebook(project / "a.ipynb", "y = 0", "import time\ntime.sleep(0.3)")
    path = pipeline_file(
        project / "pipeline.yaml",
        {
            "name": "ordered",
            "steps": {
                # named against the alphabet: "zeta" runs first, "alpha" needs it
                "alpha": {"notebook": "a.ipynb", "params": {"y": "${steps.zeta.y}"}},
                "zeta": {"notebook": "z.ipynb", "outputs": ["y"]},
            },
        },
    )
    settings = settings_for(project)
    first = run_pipeline(path, progress=False)
    assert first.status == "FINISHED"
    [ran] = pipeline_runs(settings, name="ordered")
    assert list(ran.steps) == ["zeta", "alpha"] == list(ran.step_durations)
    assert ran.steps == {"zeta": "FINISHED", "alpha": "FINISHED"}
    assert ran.step_durations["alpha"] >= 0.3
    assert ran.step_durations["zeta"] == pytest.approx(first.steps["zeta"].duration_s, abs=1e-3)

    again = run_pipeline(path, progress=False)
    assert [s.status for s in again.steps.values()] == ["CACHED", "CACHED"]
    drain(project)
    newest = pipeline_runs(settings, name="ordered")[0]
    assert newest.run_id != ran.run_id
    assert list(newest.steps) == ["zeta", "alpha"]
    assert newest.step_durations == {"zeta": 0.0, "alpha": 0.0}


def test_a_running_pipeline_shows_each_step_waiting_running_then_done(project: Path) -> None:
    gate = project / "gate"
    step_notebook(
        project / "z.ipynb",
        "x = 1",
        "import pathlib, time\n"
        f"while not pathlib.Path({str(gate)!r}).exists():\n    time.sleep(0.05)",
        'import jupyter_mlops\njupyter_mlops.output("y", x + 1)',
    )
    step_notebook(project / "a.ipynb", "y = 0", "z = y * 2")
    path = pipeline_file(
        project / "pipeline.yaml",
        {
            "name": "live",
            "steps": {
                "alpha": {"notebook": "a.ipynb", "params": {"y": "${steps.zeta.y}"}},
                "zeta": {"notebook": "z.ipynb", "outputs": ["y"]},
            },
        },
    )
    settings = settings_for(project)
    results: list[Any] = []
    worker = threading.Thread(target=lambda: results.append(run_pipeline(path, progress=False)))
    worker.start()
    try:
        running = wait_until(
            lambda: next(
                (
                    r
                    for r in pipeline_runs(settings, name="live")
                    if r.steps.get("zeta") == "RUNNING"
                ),
                None,
            ),
            "the first step running",
        )
        assert running.status == "RUNNING"
        assert running.steps == {"zeta": "RUNNING", "alpha": "WAITING"}
        assert list(running.step_started) == ["zeta"]
        assert running.step_started["zeta"] >= running.start_time
    finally:
        gate.touch()
        worker.join(WAIT_S)
    assert [r.status for r in results] == ["FINISHED"]
    [done] = pipeline_runs(settings, name="live")
    assert done.steps == {"zeta": "FINISHED", "alpha": "FINISHED"}
    assert done.step_durations["zeta"] > 0
