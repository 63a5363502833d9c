"""Four pipeline steps in parallel and two interactive kernels, all writing at once, against
the `project` fixture's store (SQLite by default, the tracking server under
scripts/team-tests.sh): every run arrives, nothing is lost, no lock error reaches a user."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from jupyter_mlops import store
from jupyter_mlops.pipelines.executor import _kernel_manager_class
from jupyter_mlops.pipelines.runner import PipelineResult, run_pipeline
from tests.conftest import cell_text, drain, runs_of_kind, settings_for, write_notebook
from tests.pipelines.helpers import pipeline_file, step_notebook

# six kernels at once: on a busy 2-core machine that takes minutes, not the default 300 s
pytestmark = [pytest.mark.slow, pytest.mark.team, pytest.mark.timeout(1500)]

STEPS = 4
STEP_CELLS = 6
KERNEL_CELLS = 10


def _interactive(path: Path, outcome: dict[str, Any]) -> None:
    """A front end running every cell of ``path`` in its own kernel (its own environment)."""
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb,
        kernel_name="python3",
        timeout=180,
        allow_errors=True,
        resources={"metadata": {"path": str(path.parent)}},
        kernel_manager_class=_kernel_manager_class({"JUPYTER_MLOPS_NOTEBOOK": str(path)}),
    ).execute()
    outcome[path.name] = nb


def test_four_steps_and_two_kernels_write_at_once(project: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    steps = {}
    for i in range(STEPS):
        step_notebook(
            project / f"s{i}.ipynb",
            "i = 0",
            "%load_ext jupyter_mlops",
            *[f"step_loss = {k} + i / 10" for k in range(STEP_CELLS)],
            'import jupyter_mlops\njupyter_mlops.output("i", i)',
        )
        steps[f"s{i}"] = {"notebook": f"s{i}.ipynb", "params": {"i": i}, "outputs": ["i"]}
    pipeline = pipeline_file(project / "p.yaml", {"name": f"concurrent-{tag}", "steps": steps})
    notebooks = [
        write_notebook(
            project / f"kernel-{tag}-{j}.ipynb",
            ["%load_ext jupyter_mlops"]
            + [f"val_loss = {j} + {k} / 100" for k in range(KERNEL_CELLS)],
        )
        for j in range(2)
    ]

    outcome: dict[str, Any] = {}

    def steps_run() -> None:
        outcome["pipeline"] = run_pipeline(
            pipeline, parallel=STEPS, use_cache=False, progress=False
        )

    threads = [threading.Thread(target=steps_run)]
    threads += [threading.Thread(target=_interactive, args=(nb, outcome)) for nb in notebooks]
    for t in threads:
        t.start()
    # one deadline for all of them; each kernel is shut down by its own client when done
    deadline = time.monotonic() + 1200
    for t in threads:
        t.join(timeout=max(0.0, deadline - time.monotonic()))
    assert len(outcome) == 3, f"did not finish: {outcome.keys()}"
    drain(project)

    # the interactive kernels: every cell one run, nothing shown to the user but the cells
    for j, path in enumerate(notebooks):
        executed = outcome[path.name]
        for cell in executed.cells[1:]:  # after %load_ext's one-line banner
            text = cell_text(cell)
            assert "locked" not in text and "jupyter-mlops:" not in text, text
        cells = runs_of_kind(project, "cell", experiment=path.name)
        assert len(cells) == KERNEL_CELLS
        assert all(c.info.status == "FINISHED" for c in cells)
        assert sorted(c.data.metrics["val_loss"] for c in cells) == [
            j + k / 100 for k in range(KERNEL_CELLS)
        ]
        [session] = runs_of_kind(project, "session", experiment=path.name)
        assert {c.data.tags["mlflow.parentRunId"] for c in cells} == {session.info.run_id}

    # the pipeline: four finished steps, each with all of its cells nested under it
    result: PipelineResult = outcome["pipeline"]
    assert [s.status for s in result.steps.values()] == ["FINISHED"] * STEPS
    client = store.client(settings_for(project))
    nested = runs_of_kind(project, "cell", experiment=f"concurrent-{tag}")
    for i in range(STEPS):
        step = result.steps[f"s{i}"]
        assert client.get_run(str(step.run_id)).info.status == "FINISHED"
        mine = [c for c in nested if c.data.tags["mlflow.parentRunId"] == step.run_id]
        assert len(mine) == STEP_CELLS + 1  # the metric cells and the output cell
        assert sorted(
            c.data.metrics["step_loss"] for c in mine if "step_loss" in c.data.metrics
        ) == [k + i / 10 for k in range(STEP_CELLS)]
        executed = nbformat.read(project / str(step.notebook), as_version=4)
        assert not any("locked" in cell_text(c) for c in executed.cells)
