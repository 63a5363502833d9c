"""A fully cached run from the command line: answered from the cache index without MLflow,
its runs recorded by a writer process exactly once, whatever kills that writer."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jupyter_mlops import store
from jupyter_mlops.pipelines.runner import run_pipeline
from jupyter_mlops.pipelines.spec import PipelineSpecError
from jupyter_mlops.tracking.drainer_client import start_writer
from jupyter_mlops.tracking.run_journal import RunJournal
from tests.conftest import drain, runs_of_kind, settings_for, wait_for_more_runs
from tests.pipelines.helpers import diamond, pipeline_file, step_notebook

pytestmark = pytest.mark.slow

_CLI = """
import sys
from jupyter_mlops.cli import main
try:
    main(sys.argv[1:], standalone_mode=False)
finally:
    print("imported mlflow:", "mlflow" in sys.modules)
"""


def _cli(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _CLI, *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _wait_for_journals(project: Path) -> None:
    """Until every journal of the project has been written and removed by its writer."""
    journal_dir = settings_for(project).journal_dir
    deadline = time.monotonic() + 120
    while list(journal_dir.glob("*.jsonl")):
        assert time.monotonic() < deadline, "the writer did not finish within 120 s"
        time.sleep(0.1)


def test_a_cached_cli_run_skips_mlflow_and_its_runs_reach_the_store(project: Path) -> None:
    path = diamond(project)
    first = run_pipeline(path, {"x": "2"}, progress=False)
    done = _cli(project, "run", str(path), "-p", "x=2", "--quiet")
    assert done.returncode == 0, done.stderr
    assert "imported mlflow: False" in done.stdout
    assert done.stdout.count("CACHED") == 4
    assert "every step from the cache (its run is being recorded: record " in done.stdout

    _wait_for_journals(project)
    client = store.client(settings_for(project))
    pipelines = runs_of_kind(project, "pipeline", "diamond")
    assert len(pipelines) == 2
    [cached] = [p for p in pipelines if p.info.run_id != first.run_id]
    assert cached.info.status == "FINISHED"
    assert cached.data.params == {"x": "2", "fail": "False", "nap": "0.0"}
    assert json.loads(cached.data.tags["mlops.step_status"]) == dict.fromkeys("abcd", "CACHED")
    result = client.download_artifacts(cached.info.run_id, "pipeline_result.json")
    assert json.loads(Path(result).read_text())["steps"]["d"]["outputs"] == {"total": 45}
    steps = {
        s.data.tags["mlops.step"]: s
        for s in runs_of_kind(project, "step", "diamond")
        if s.data.tags["mlflow.parentRunId"] == cached.info.run_id
    }
    assert set(steps) == set("abcd")
    d = steps["d"]
    assert d.info.status == "FINISHED"
    assert d.data.tags["mlops.cache_hit"] == "true"
    assert d.data.tags["mlops.reused_run_id"] == first.steps["d"].run_id
    assert d.data.tags["mlops.cache_key"] == first.steps["d"].cache_key
    assert d.data.metrics == {"total": 45.0}
    assert d.data.params == {"left": "5", "right": "40"}

    # a step that must run: the command runs the pipeline and writes its runs itself
    again = _cli(project, "run", str(path), "-p", "x=3", "--quiet")
    assert again.returncode == 0, again.stderr
    assert "imported mlflow: True" in again.stdout
    assert again.stdout.count("FINISHED") == 5


def test_a_bad_executor_is_refused_even_when_everything_is_cached(project: Path) -> None:
    path = diamond(project)
    run_pipeline(path, {"x": "2"}, progress=False)
    done = _cli(project, "run", str(path), "-p", "x=2", "--executor", "spark")
    assert done.returncode != 0
    assert "unknown executor 'spark' (known: local, dask)" in done.stdout + done.stderr


def test_an_unwritable_journal_falls_back_to_writing_the_store(project: Path) -> None:
    path = diamond(project)
    run_pipeline(path, {"x": "2"}, progress=False)
    journal_dir = settings_for(project).journal_dir
    shutil.rmtree(journal_dir, ignore_errors=True)
    journal_dir.write_text("a file where the journal folder should be")  # no journal fits
    try:
        cached = run_pipeline(path, {"x": "2"}, progress=False, record_in_background=True)
    finally:
        journal_dir.unlink()
    assert cached.run_id and cached.record_id is None
    assert [s.status for s in cached.steps.values()] == ["CACHED"] * 4


def test_a_monitor_step_is_cached_until_its_deployment_captures_more(project: Path) -> None:
    step_notebook(
        project / "watch.ipynb",
        "deployment = ''",
        'import jupyter_mlops\njupyter_mlops.output("checked", 1)',
    )
    path = pipeline_file(
        project / "watch.yaml",
        {
            "name": "watch",
            "steps": {"monitor": {"notebook": "watch.ipynb", "traffic": ["prod"]}},
        },
    )
    capture = settings_for(project).state_dir / "inference" / "prod"
    capture.mkdir(parents=True)
    segment = capture / "capture-20261202-120000Z-1.arrows"
    segment.write_bytes(b"x" * 100)
    assert run_pipeline(path, progress=False).steps["monitor"].status == "FINISHED"
    assert run_pipeline(path, progress=False).steps["monitor"].status == "CACHED"
    with open(segment, "ab") as fh:
        fh.write(b"y" * 10)  # one more captured request
    assert run_pipeline(path, progress=False).steps["monitor"].status == "FINISHED"
    assert run_pipeline(path, progress=False).steps["monitor"].status == "CACHED"
    deployment = settings_for(project).state_dir / "deployments" / "prod"
    deployment.mkdir(parents=True)
    (deployment / "deployment.json").write_text('{"weights": {"2": 1.0}}')  # a rollback
    assert run_pipeline(path, progress=False).steps["monitor"].status == "FINISHED"


def test_a_bad_traffic_list_is_named(project: Path) -> None:
    step_notebook(project / "watch.ipynb", "deployment = ''", "pass")
    path = pipeline_file(
        project / "watch.yaml",
        {"name": "watch", "steps": {"monitor": {"notebook": "watch.ipynb", "traffic": "prod"}}},
    )
    with pytest.raises(
        PipelineSpecError, match=r"step 'monitor': traffic: must be a list of strings"
    ):
        run_pipeline(path, progress=False)


STEPS = 80
KILLS = 12


def test_the_writer_killed_at_random_points_writes_each_run_record_once(project: Path) -> None:
    settings = settings_for(project)
    journal = RunJournal(settings)
    parent = journal.add(
        experiment="killed-pipeline", run_name="killed-pipeline", tags={"mlops.kind": "pipeline"}
    )
    for i in range(STEPS):
        journal.add(
            experiment="killed-pipeline",
            run_name=f"s{i}",
            tags={"mlops.kind": "step", "mlops.step": f"s{i}"},
            params={"i": str(i), "shared": "x"},
            metrics={"value": float(i)},
            dicts={"result.json": {"i": i}},
            parent=parent,
        )
    proc = journal.hand_over()
    assert proc is not None
    rng = random.Random(7)
    kills = seen = 0
    db = settings.state_dir / "mlflow.db"
    while kills < KILLS:
        try:
            seen = wait_for_more_runs(db, proc, seen)
            if proc.poll() is not None:
                break  # it wrote everything before this kill
            time.sleep(rng.uniform(0, 0.3))  # somewhere in a run's writes
        finally:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                kills += 1
            proc.wait(timeout=60)
        proc = start_writer(settings, journal.journal_id, stdin=subprocess.DEVNULL)
    proc.wait(timeout=120)  # the last one writes the rest
    assert kills >= 8, f"only {kills} kills landed while the writer was writing"
    drain(project)

    [pipeline] = runs_of_kind(project, "pipeline", "killed-pipeline")
    assert pipeline.info.status == "FINISHED"
    steps = runs_of_kind(project, "step", "killed-pipeline")
    names = [s.data.tags["mlops.step"] for s in steps]
    assert len(names) == len(set(names)), "a record was written twice"
    assert sorted(names) == sorted(f"s{i}" for i in range(STEPS)), "a record was lost"
    client = store.client(settings)
    for run in steps:
        i = int(run.data.tags["mlops.step"][1:])
        assert run.info.status == "FINISHED", (i, run.info.status)
        assert run.data.tags["mlflow.parentRunId"] == pipeline.info.run_id
        assert run.data.params == {"i": str(i), "shared": "x"}
        assert run.data.metrics == {"value": float(i)}
        artifact = client.download_artifacts(run.info.run_id, "result.json")
        assert json.loads(Path(artifact).read_text()) == {"i": i}
    assert not list(settings.journal_dir.glob("*.jsonl"))
