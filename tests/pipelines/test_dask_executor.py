"""Steps on a real dask.distributed cluster (worker processes) against the local executor."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from jupyter_mlops import store
from jupyter_mlops.cli import main
from jupyter_mlops.exceptions import MlopsError, UsageError
from jupyter_mlops.magics import run_line
from jupyter_mlops.pipelines.runner import PipelineFailed, PipelineResult, run_pipeline
from jupyter_mlops.pipelines.sweep import run_sweep
from tests.conftest import drain, free_port, runs_of_kind, settings_for
from tests.pipelines.helpers import diamond, step_notebook

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        yield str(cluster.scheduler_address)


def _tracked_diamond(project: Path) -> Path:
    """The diamond pipeline, with a step whose cells are tracked (they nest under the step)."""
    path = diamond(project)
    step_notebook(
        project / "a.ipynb",
        "x = 1",
        "%load_ext jupyter_mlops",
        "train_loss = x / 10",
        'import jupyter_mlops\njupyter_mlops.output("double", x * 2)',
    )
    return path


def _tree(project: Path, result: PipelineResult) -> dict[str, Any]:
    """The recorded run tree of one pipeline run, without ids and times."""
    client = store.client(settings_for(project))
    tree: dict[str, Any] = {}
    cells = runs_of_kind(project, "cell")
    for name, step in result.steps.items():
        assert step.run_id is not None
        run = client.get_run(step.run_id)
        assert run.data.tags["mlflow.parentRunId"] == result.run_id
        nested = [c for c in cells if c.data.tags["mlflow.parentRunId"] == step.run_id]
        tree[name] = {
            "status": run.info.status,
            "params": run.data.params,
            "metrics": run.data.metrics,
            "cache_key": run.data.tags["mlops.cache_key"],
            "cache_hit": run.data.tags["mlops.cache_hit"],
            "outputs": run.data.tags["mlops.outputs"],
            "artifacts": [a.path for a in client.list_artifacts(step.run_id)],
            "cells": sorted(
                (
                    c.data.tags["mlops.source_preview"],
                    c.info.status,
                    c.data.metrics.get("train_loss"),
                )
                for c in nested
            ),
        }
    return tree


def test_dask_and_local_give_the_same_results_cache_and_runs(project: Path, scheduler: str) -> None:
    path = _tracked_diamond(project)
    on_dask = run_pipeline(path, {"x": "3"}, executor="dask", scheduler=scheduler, progress=False)
    assert [s.status for s in on_dask.steps.values()] == ["FINISHED"] * 4
    assert on_dask.steps["d"].outputs == {"total": 67}
    executed = project / on_dask.steps["a"].notebook
    assert executed.is_file() and "train_loss" in executed.read_text()

    cached = run_pipeline(path, {"x": "3"}, executor="dask", scheduler=scheduler, progress=False)
    assert [s.status for s in cached.steps.values()] == ["CACHED"] * 4
    assert cached.steps["d"].reused_run_id == on_dask.steps["d"].run_id

    local = run_pipeline(path, {"x": "3"}, use_cache=False, progress=False)
    drain(project)
    assert {n: (s.status, s.outputs, s.params, s.cache_key) for n, s in local.steps.items()} == {
        n: (s.status, s.outputs, s.params, s.cache_key) for n, s in on_dask.steps.items()
    }
    dask_tree, local_tree = _tree(project, on_dask), _tree(project, local)
    assert dask_tree == local_tree
    assert len(dask_tree["a"]["cells"]) == 2  # the cells after %load_ext
    assert any(c[2] == 0.3 for c in dask_tree["a"]["cells"])
    client = store.client(settings_for(project))
    assert client.get_run(on_dask.run_id).data.tags["mlops.executor"] == "dask"
    assert "mlops.executor" not in client.get_run(local.run_id).data.tags


def test_a_failing_step_on_dask_names_its_cell(project: Path, scheduler: str) -> None:
    path = diamond(project)
    with pytest.raises(PipelineFailed) as err:
        run_pipeline(path, {"fail": "true"}, executor="dask", scheduler=scheduler, progress=False)
    assert "step 'b' in cell 6 (In [4]): ValueError: b was told to fail with value=2" in str(
        err.value
    )
    assert {n: s.status for n, s in err.value.result.steps.items()} == {
        "a": "FINISHED",
        "b": "FAILED",
        "c": "FINISHED",
        "d": "SKIPPED",
    }
    assert (project / err.value.result.steps["b"].notebook).is_file()


def test_sweep_and_cli_on_dask(project: Path, scheduler: str) -> None:
    path = diamond(project)
    sweep = run_sweep(
        path, None, {"x": ["1", "2"]}, executor="dask", scheduler=scheduler, progress=False
    )
    assert sweep.ok
    assert sorted(r.steps["d"].outputs["total"] for r in sweep.runs) == [23, 45]
    ran = CliRunner().invoke(
        main, ["run", str(path), "-p", "x=1", "--executor", "dask", "--scheduler", scheduler]
    )
    assert ran.exit_code == 0, ran.output
    assert "CACHED" in ran.output and "FINISHED" in ran.output
    magic = run_line(f"run {path} -p x=2 --executor dask --scheduler {scheduler}")
    assert "pipeline 'diamond'" in magic and "CACHED" in magic
    drain(project)  # the fully cached command left its runs to a writer process
    assert len(runs_of_kind(project, "pipeline")) == 4


def test_bad_executor_options(project: Path) -> None:
    path = diamond(project)
    runner = CliRunner()
    unknown = runner.invoke(main, ["run", str(path), "--executor", "spark"])
    assert unknown.exit_code == 1
    assert "error: unknown executor 'spark' (known: local, dask)" in unknown.output
    alone = runner.invoke(main, ["run", str(path), "--scheduler", "tcp://127.0.0.1:8786"])
    assert alone.exit_code == 1
    assert "--scheduler is the address of a Dask scheduler: use it with --executor dask" in (
        alone.output
    )
    no_address = runner.invoke(main, ["run", str(path), "--executor", "dask"])
    assert no_address.exit_code == 1
    assert "--executor dask needs --scheduler ADDRESS" in no_address.output
    address = f"tcp://127.0.0.1:{free_port()}"
    down = runner.invoke(main, ["run", str(path), "--executor", "dask", "--scheduler", address])
    assert down.exit_code == 1
    assert f"error: cannot reach the Dask scheduler at {address}" in down.output
    # nothing was recorded for runs that never started
    assert runs_of_kind(project, "pipeline") == []
    with pytest.raises(UsageError, match="unknown executor 'ray'"):
        run_pipeline(path, executor="ray", progress=False)
    with pytest.raises(UsageError, match="--scheduler is the address of a Dask scheduler"):
        run_line(f"run {path} --scheduler {address}")


def test_missing_dask_names_the_extra(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if it were not installed
    with pytest.raises(MlopsError, match=r"pip install 'jupyter-mlops\[dask\]'"):
        run_pipeline(
            diamond(project), executor="dask", scheduler="tcp://127.0.0.1:8786", progress=False
        )
