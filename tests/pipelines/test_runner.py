"""Real papermill executions of small notebooks in a temporary project."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner

from jupyter_mlops import store
from jupyter_mlops.cli import main
from jupyter_mlops.pipelines.runner import PipelineFailed, run_pipeline
from jupyter_mlops.pipelines.sweep import run_sweep
from tests.conftest import drain, runs_of_kind, settings_for
from tests.pipelines.helpers import diamond, pipeline_file, step_notebook

pytestmark = pytest.mark.slow


def _step_runs(project: Path, pipeline_run_id: str) -> dict[str, object]:
    client = store.client(settings_for(project))
    runs = client.search_runs(
        [client.get_run(pipeline_run_id).info.experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{pipeline_run_id}' and tags.`mlops.kind` = 'step'",
    )
    return {r.data.tags["mlops.step"]: r for r in runs}


def test_dag_outputs_cache_and_lineage(project: Path) -> None:
    path = diamond(project)
    result = run_pipeline(path, {"x": "3"}, progress=False)
    assert result.ok
    assert [s.status for s in result.steps.values()] == ["FINISHED"] * 4
    assert result.steps["a"].outputs == {"double": 6}
    assert result.steps["d"].params == {"left": 7, "right": 60}
    assert result.steps["d"].outputs == {"total": 67}

    client = store.client(settings_for(project))
    pipeline = client.get_run(result.run_id)
    assert pipeline.info.status == "FINISHED"
    assert pipeline.data.tags["mlops.kind"] == "pipeline"
    assert pipeline.data.params["x"] == "3"
    assert json.loads(pipeline.data.tags["mlops.dag"])["d"] == ["b", "c"]
    steps = _step_runs(project, result.run_id)
    assert set(steps) == {"a", "b", "c", "d"}
    d = steps["d"]
    assert d.data.metrics["total"] == 67
    assert d.data.params == {"left": "7", "right": "60"}
    assert [a.path for a in client.list_artifacts(d.info.run_id)] == ["d.ipynb"]
    assert (project / result.steps["d"].notebook).is_file()

    again = run_pipeline(path, {"x": "3"}, progress=False)
    assert [s.status for s in again.steps.values()] == ["CACHED"] * 4
    assert again.steps["d"].outputs == {"total": 67}
    assert again.steps["d"].reused_run_id == result.steps["d"].run_id
    cached = _step_runs(project, again.run_id)["d"]
    assert cached.data.tags["mlops.cache_hit"] == "true"
    assert cached.data.tags["mlops.reused_run_id"] == result.steps["d"].run_id

    # editing c re-runs c and what depends on it; a and b stay cached
    nb = nbformat.read(project / "c.ipynb", as_version=4)
    nb.cells[-1].source = nb.cells[-1].source.replace("value * 10", "value * 100")
    nbformat.write(nb, project / "c.ipynb")
    edited = run_pipeline(path, {"x": "3"}, progress=False)
    assert {n: s.status for n, s in edited.steps.items()} == {
        "a": "CACHED",
        "b": "CACHED",
        "c": "FINISHED",
        "d": "FINISHED",
    }
    assert edited.steps["d"].outputs == {"total": 607}
    forced = run_pipeline(path, {"x": "3"}, progress=False, use_cache=False)
    assert [s.status for s in forced.steps.values()] == ["FINISHED"] * 4


def test_declared_inputs_are_part_of_the_cache_key(project: Path) -> None:
    (project / "data.txt").write_text("one")
    step_notebook(
        project / "read.ipynb",
        'path = "data.txt"',
        'import jupyter_mlops\njupyter_mlops.output("text", open(path).read())',
    )
    path = pipeline_file(
        project / "p.yaml",
        {
            "name": "reader",
            "steps": {
                "read": {"notebook": "read.ipynb", "inputs": ["data.txt"], "outputs": ["text"]}
            },
        },
    )
    assert run_pipeline(path, progress=False).steps["read"].outputs == {"text": "one"}
    assert run_pipeline(path, progress=False).steps["read"].status == "CACHED"
    (project / "data.txt").write_text("two")
    changed = run_pipeline(path, progress=False).steps["read"]
    assert (changed.status, changed.outputs) == ("FINISHED", {"text": "two"})
    (project / "data.txt").unlink()
    with pytest.raises(PipelineFailed, match=r"declared input 'data\.txt' does not exist"):
        run_pipeline(path, progress=False)


def test_failure_names_the_cell_skips_dependants_and_resumes(project: Path) -> None:
    path = diamond(project)
    with pytest.raises(PipelineFailed) as err:
        run_pipeline(path, {"fail": "true"}, progress=False)
    result = err.value.result
    message = str(err.value)
    assert "step 'b' in cell 6 (In [4]): ValueError: b was told to fail with value=2" in message
    assert "skipped: d" in message
    assert f"--resume {result.run_id}" in message
    assert {n: s.status for n, s in result.steps.items()} == {
        "a": "FINISHED",
        "b": "FAILED",
        "c": "FINISHED",
        "d": "SKIPPED",
    }
    executed = nbformat.read(project / result.steps["b"].notebook, as_version=4)
    # the cell the message names is the 6th of the executed notebook (papermill's banner and
    # anchor cells come first), shown as [4]; the banner names it "In [4]" too
    failing = executed.cells[5]
    assert "In [4]" in executed.cells[0].source
    assert failing.execution_count == 4
    assert [o.get("ename") for o in failing.outputs if o.output_type == "error"] == ["ValueError"]
    client = store.client(settings_for(project))
    failed_run = client.get_run(result.run_id)
    assert failed_run.info.status == "FAILED"
    assert failed_run.data.tags["mlops.failed_step"] == "b"
    assert _step_runs(project, result.run_id)["b"].info.status == "FAILED"

    resumed = run_pipeline(path, {"fail": "false"}, resume=result.run_id, progress=False)
    assert {n: s.status for n, s in resumed.steps.items()} == {
        "a": "REUSED",
        "b": "FINISHED",
        "c": "REUSED",
        "d": "FINISHED",
    }
    assert resumed.steps["d"].outputs == {"total": 23}
    assert client.get_run(resumed.run_id).data.tags["mlops.resumed_from"] == result.run_id


def test_independent_steps_run_side_by_side(project: Path) -> None:
    path = diamond(project, sleep=2.0)
    result = run_pipeline(path, parallel=2, progress=False, use_cache=False)
    steps = _step_runs(project, result.run_id)
    b, c = steps["b"].info, steps["c"].info
    # both step runs were executing at the same moment
    assert b.start_time < c.end_time and c.start_time < b.end_time


def test_sweep_runs_every_configuration_and_compares_them(project: Path) -> None:
    path = diamond(project)
    sweep = run_sweep(
        path, None, {"x": ["1", "2"], "nap": ["0", "0.1"]}, parallel=2, progress=False
    )
    assert sweep.ok
    assert len(sweep.runs) == 4
    totals = sorted(r.steps["d"].outputs["total"] for r in sweep.runs)
    assert totals == [23, 23, 45, 45]
    table = sweep.table()
    assert "d.total" in table.splitlines()[0]
    assert len(table.splitlines()) == 2 + 4
    pipelines = runs_of_kind(project, "pipeline")
    assert len({p.data.tags["mlops.sweep_id"] for p in pipelines}) == 1


@pytest.mark.parametrize(
    ("cells", "message"),
    [
        (['import jupyter_mlops\njupyter_mlops.output("s", {1, 2})'], "is not JSON-serialisable"),
        (["y = 1"], "did not publish declared output(s) ['s']"),
        (["import os\nos._exit(1)"], "the kernel died"),
    ],
    ids=["not-json", "missing-output", "kernel-dies"],
)
def test_bad_step_results_fail_the_pipeline(project: Path, cells: list[str], message: str) -> None:
    step_notebook(project / "s.ipynb", "n = 1", *cells)
    path = pipeline_file(
        project / "p.yaml",
        {"name": "bad", "steps": {"s": {"notebook": "s.ipynb", "outputs": ["s"]}}},
    )
    with pytest.raises(PipelineFailed) as err:
        run_pipeline(path, progress=False)
    assert message in str(err.value)
    assert (
        store.client(settings_for(project)).get_run(err.value.result.run_id).info.status == "FAILED"
    )


def test_param_of_the_wrong_type_for_the_template(project: Path) -> None:
    step_notebook(project / "s.ipynb", "n = 1", "m = n")
    path = pipeline_file(
        project / "p.yaml",
        {"name": "typed", "steps": {"s": {"notebook": "s.ipynb", "params": {"k": 1}}}},
    )
    with pytest.raises(PipelineFailed) as err:
        run_pipeline(path, progress=False)
    assert "step 's': params.k: s.ipynb's parameters cell has no 'k' (it has: n)" in str(err.value)
    (project / "p.yaml").write_text(
        "name: typed\nsteps:\n  s:\n    notebook: s.ipynb\n    params: {n: abc}\n"
    )
    with pytest.raises(PipelineFailed) as err:
        run_pipeline(project / "p.yaml", progress=False)
    assert "step 's': params.n: s.ipynb expects int (default 1), got str 'abc'" in str(err.value)


def test_template_without_parameters_cell_warns(project: Path) -> None:
    step_notebook(project / "s.ipynb", None, "import jupyter_mlops", 'jupyter_mlops.output("n", n)')
    path = pipeline_file(
        project / "p.yaml",
        {
            "name": "untagged",
            "steps": {"s": {"notebook": "s.ipynb", "params": {"n": 5}, "outputs": ["n"]}},
        },
    )
    result = run_pipeline(path, progress=False)
    assert result.steps["s"].outputs == {"n": 5}
    assert "s.ipynb has no cell tagged 'parameters'; papermill injects" in result.summary()


def test_step_cells_nest_under_the_step_run(project: Path) -> None:
    step_notebook(
        project / "t.ipynb",
        "lr = 0.1",
        "%load_ext jupyter_mlops",
        "val_loss = lr * 2",
        'import jupyter_mlops\njupyter_mlops.output("val_loss", val_loss)',
    )
    path = pipeline_file(
        project / "p.yaml",
        {"name": "nested", "steps": {"t": {"notebook": "t.ipynb", "outputs": ["val_loss"]}}},
    )
    result = run_pipeline(path, progress=False)
    drain(project)
    cells = runs_of_kind(project, "cell")
    assert len(cells) == 2
    assert {c.data.tags["mlflow.parentRunId"] for c in cells} == {result.steps["t"].run_id}
    assert cells[0].data.metrics["val_loss"] == 0.2
    assert runs_of_kind(project, "session") == []
    step = store.client(settings_for(project)).get_run(result.steps["t"].run_id)
    assert step.info.status == "FINISHED"


def test_cli_exit_codes_and_messages(project: Path) -> None:
    path = diamond(project)
    runner = CliRunner()
    ok = runner.invoke(main, ["run", str(path), "-p", "x=2", "--quiet"])
    assert ok.exit_code == 0, ok.output
    assert "pipeline 'diamond'" in ok.output and "FINISHED" in ok.output
    bad = runner.invoke(main, ["run", str(path), "-p", "fail=true", "--quiet"])
    assert bad.exit_code == 1
    assert "error: pipeline 'diamond' failed: step 'b'" in bad.output
    typo = runner.invoke(main, ["run", str(path), "-p", "x"])
    assert typo.exit_code == 2
    assert "expected name=value" in typo.output
    missing = runner.invoke(main, ["run", str(project / "nope.yaml")])
    assert missing.exit_code == 1
    assert "no such pipeline file" in missing.output
    unknown = runner.invoke(main, ["run", str(path), "--sweep", "zz=1,2"])
    assert unknown.exit_code == 1
    assert "--sweep zz: not a pipeline param" in unknown.output
    listed = runner.invoke(main, ["pipelines"])
    assert listed.exit_code == 0
    assert listed.output.count("diamond") == 2
    assert "FAILED" in listed.output


def test_step_kernels_keep_their_own_notices_out_of_the_terminal(project: Path) -> None:
    """ipykernel's TCP notice and its shutdown interrupt go to a private log per step."""
    import os
    import subprocess
    import sys

    path = diamond(project)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "JUPYTER_MLOPS_"))}
    done = subprocess.run(
        [sys.executable, "-m", "jupyter_mlops.cli", "run", str(path), "--quiet"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for noise in ("without encryption", "KeyboardInterrupt caught", "IPKernelApp"):
        assert noise not in done.stderr and noise not in done.stdout
    logs = sorted((project / ".mlops" / "pipelines").glob("*/*.kernel.log"))
    assert sorted(p.name for p in logs) == [f"{s}.kernel.log" for s in "abcd"]
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in logs)
    # the notices were written, only elsewhere
    assert any("without encryption" in p.read_text() for p in logs)
