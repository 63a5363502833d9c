"""A pipeline run lists its steps in the order they can run (its DAG), not by name, with the
seconds each took: as run, and as answered wholly from the cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from jupyter_mlops.pipelines.history import pipeline_runs
from jupyter_mlops.pipelines.runner import run_pipeline
from tests.conftest import drain, settings_for
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
