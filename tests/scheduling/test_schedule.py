"""Schedules through a real Jupyter server's jupyter-scheduler: a monitor that raises an alert
on its own, a pipeline job recorded like any run, and the messages of bad schedules."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from jupyter_mlops import store
from jupyter_mlops.cli import main
from jupyter_mlops.config import Settings, load_settings
from jupyter_mlops.magics import run_line
from jupyter_mlops.monitoring.monitor import alerts
from jupyter_mlops.registry.service import promote
from jupyter_mlops.scheduling import schedule_monitor, schedules, unschedule
from jupyter_mlops.scheduling.cron import ScheduleError, check_cron, every_to_cron
from jupyter_mlops.scheduling.job import SCHEDULE_TAG
from jupyter_mlops.scheduling.jupyter_server import JupyterServer
from jupyter_mlops.serving import manager
from tests.conftest import runs_of_kind, stop_deployments, wait_until
from tests.monitoring.test_monitor import _register, send, settle
from tests.pipelines.helpers import pipeline_file, step_notebook

pytestmark = pytest.mark.slow
RNG = np.random.default_rng(7)
#: a job starts a kernel and imports Evidently: tens of seconds on a loaded machine
JOB_S = 300


@pytest.fixture
def lin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """A project with ``lin`` v1 and v2 (v2 the champion), each with a reference sample."""
    root = tmp_path / "project"
    root.mkdir()
    (root / "mlops.yaml").write_text("")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    monkeypatch.chdir(root)
    settings = load_settings(root)
    store.use_fluent(settings)
    _register(settings, "1")
    _register(settings, "2")
    promote("lin", 2, "champion", settings=settings)
    try:
        yield settings
    finally:
        try:
            stop_deployments(settings)
        finally:
            store.forget_clients()


def _definitions(server: JupyterServer) -> dict[str, dict]:
    """What jupyter-scheduler itself holds (and shows in JupyterLab's Notebook Jobs)."""
    listed = server.call("GET", "scheduler/job_definitions")["job_definitions"]
    return {d["name"]: d for d in listed}


def test_scheduled_monitor_raises_the_alert(lin: Settings, scheduler_server: JupyterServer) -> None:
    manager.deploy("lin@champion", name="prod", settings=lin)
    made = schedule_monitor("prod", every="20s", window="10m", settings=lin)
    assert (made.name, made.kind, made.target, made.cron) == (
        "monitor-prod", "monitor", "prod", "* * * * * */20",
    )  # fmt: skip
    assert _definitions(scheduler_server)["monitor-prod"]["schedule"] == "* * * * * */20"
    notebook = lin.state_dir / "schedules" / "monitor-prod.ipynb"
    assert notebook.stat().st_mode & 0o777 == 0o600
    assert alerts(settings=lin) == []

    shifted = RNG.normal(0, 1, (600, 4))
    shifted[:, :3] += 3.0
    send(manager.get_deployment("prod", settings=lin).url, shifted)
    settle(lin, "prod", 600)
    # nobody calls monitor(): the scheduled job does, and the policy raises the alert
    [alert] = wait_until(lambda: alerts(settings=lin)[:1] or None, "an alert", timeout=JOB_S)
    assert (alert["deployment"], alert["version"]) == ("prod", "2")
    client = store.client(lin)
    run = wait_until(
        lambda: (r := client.get_run(alert["run_id"])).data.tags.get(SCHEDULE_TAG) and r,
        "the monitor run tagged with its schedule",
        timeout=JOB_S,
    )
    assert run.data.tags[SCHEDULE_TAG] == "monitor-prod"
    assert run.data.tags["mlops.kind"] == "monitor" and run.data.tags["mlops.alert"] == "true"

    [listed] = wait_until(
        lambda: (s := schedules(settings=lin)) and s[0].last_status == "COMPLETED" and s,
        "a completed job in the listing",
        timeout=JOB_S,  # the job's kernel still has to finish after the alert
    )
    assert listed.name == "monitor-prod" and listed.next_run.endswith("UTC")
    out = CliRunner().invoke(main, ["schedules"])
    assert out.exit_code == 0, out.output
    assert "monitor-prod" in out.output and "* * * * * */20" in out.output

    out = CliRunner().invoke(main, ["unschedule", "monitor-prod"])
    assert out.exit_code == 0, out.output
    assert out.output.strip() == "unscheduled monitor-prod (monitor prod)"
    assert schedules(settings=lin) == [] and not notebook.exists()
    assert "monitor-prod" not in _definitions(scheduler_server)


def test_scheduled_pipeline_job_is_a_tracked_pipeline_run(
    project: Path, scheduler_server: JupyterServer
) -> None:
    step_notebook(
        project / "square.ipynb", "x = 2", 'import jupyter_mlops\njupyter_mlops.output("sq", x * x)'
    )
    pipeline_file(
        project / "pipeline.yaml",
        {"name": "nightly", "params": {"x": 2}, "steps": {"square": {"notebook": "square.ipynb", "outputs": ["sq"],
                                                                     "params": {"x": "${params.x}"}}}},
    )  # fmt: skip
    out = CliRunner().invoke(
        main, ["schedule", "pipeline.yaml", "--cron", "0  3 * * *", "-p", "x=7"]
    )
    assert out.exit_code == 0, out.output
    assert out.output.startswith(
        "scheduled pipeline-pipeline: pipeline pipeline.yaml on '0 3 * * *'"
    )
    definition = _definitions(scheduler_server)["pipeline-pipeline"]
    assert definition["schedule"] == "0 3 * * *" and "jupyter-mlops" in definition["tags"]
    # JupyterLab's "Run job" on the definition: the job the schedule would start at 03:00
    job = scheduler_server.call(
        "POST", f"scheduler/job_definitions/{definition['job_definition_id']}/jobs", {}
    )
    status = wait_until(
        lambda: (
            (s := scheduler_server.call("GET", f"scheduler/jobs/{job['job_id']}")["status"])
            in ("COMPLETED", "FAILED")
            and s
        ),
        "the pipeline job to end",
        timeout=JOB_S,
    )
    assert status == "COMPLETED"
    settings = load_settings(project)
    [run] = wait_until(lambda: runs_of_kind(project, "pipeline") or None, "the pipeline run")
    assert run.data.tags[SCHEDULE_TAG] == "pipeline-pipeline"
    assert run.data.params["x"] == "7"
    [listed] = schedules(settings=settings)
    assert (listed.kind, listed.target, listed.last_status) == (
        "pipeline",
        "pipeline.yaml",
        "COMPLETED",
    )

    listing = run_line("schedules")  # %mlops schedules in a notebook of that server
    assert "pipeline-pipeline" in listing and "COMPLETED" in listing
    again = CliRunner().invoke(main, ["schedule", "pipeline.yaml", "--every", "6h"])
    assert again.exit_code == 1
    assert "a schedule named 'pipeline-pipeline' exists" in again.output
    assert CliRunner().invoke(main, ["unschedule", "pipeline-pipeline"]).exit_code == 0


def test_bad_schedules_get_clear_messages(project: Path, jupyter_dirs: dict[str, Path]) -> None:
    step_notebook(project / "s.ipynb", "x = 1", "y = x")
    pipeline_file(
        project / "pipeline.yaml",
        {
            "params": {"x": 1},
            "steps": {"s": {"notebook": "s.ipynb", "params": {"x": "${params.x}"}}},
        },
    )

    def run(*args: str) -> str:
        result = CliRunner().invoke(main, list(args))
        assert result.exit_code != 0, result.output
        return result.output

    assert (
        "cron expression '61 * * * *' does not parse: [61 * * * *] is not acceptable, out of range"
        in run("schedule", "pipeline.yaml", "--cron", "61 * * * *")
    )
    assert "Exactly 5 or 6 columns" in run("schedule", "pipeline.yaml", "--cron", "every day")
    assert "needs --cron EXPRESSION or --every INTERVAL (one)" in run("schedule", "pipeline.yaml")
    assert "--every '7m': 7m does not divide a cycle evenly; use one of 1m, 2m, 3m" in run(
        "schedule", "pipeline.yaml", "--every", "7m"
    )
    assert "--every 'soon': expected a number and s, m, h or d" in run(
        "schedule", "pipeline.yaml", "--every", "soon"
    )
    assert "the shortest interval is 10s" in run("schedule", "monitor", "prod", "--every", "5s")
    assert "no deployment 'prod' in this project (`jupyter mlops deployments` lists them)" in run(
        "schedule", "monitor", "prod", "--every", "15m"
    )
    assert "schedule monitor needs a DEPLOYMENT" in run("schedule", "monitor", "--every", "15m")
    assert "no such pipeline file" in run("schedule", "missing.yaml", "--cron", "0 3 * * *")
    assert "outside the project directory" in run(
        "schedule", "../elsewhere.yaml", "--cron", "0 3 * * *"
    )
    assert "pipeline.yaml: name: required, a non-empty string" in run(
        "schedule", "pipeline.yaml", "--cron", "0 3 * * *"
    )  # a malformed pipeline is refused when scheduled, not when it runs at 03:00
    pipeline_file(
        project / "pipeline.yaml",
        {"name": "p", "params": {"x": 1}, "steps": {"s": {"notebook": "s.ipynb"}}},
    )
    assert "-p nope: unknown pipeline param (known: x)" in run(
        "schedule", "pipeline.yaml", "--cron", "0 3 * * *", "-p", "nope=1"
    )
    assert "schedule name 'a b'" in run(
        "schedule", "pipeline.yaml", "--every", "1h", "--name", "a b"
    )
    # every input is fine, but no Jupyter server runs to hold the schedule
    assert "no running Jupyter server serves" in run("schedule", "pipeline.yaml", "--every", "1h")
    assert "start `jupyter lab` in the project" in run("schedules")
    with pytest.raises(ScheduleError, match="--window is for a monitor schedule"):
        run_line("schedule pipeline.yaml --every 1h --window 1h")
    with pytest.raises(ScheduleError, match="no deployment 'prod' in this project"):
        run_line("schedule monitor prod")  # every 15m by default
    with pytest.raises(ScheduleError, match="a monitor on --cron needs --window"):
        schedule_monitor("prod", cron="*/5 * * * *")


def test_a_server_without_jupyter_scheduler_is_named(
    project: Path, plain_server: dict[str, Any]
) -> None:
    step_notebook(project / "s.ipynb", "x = 1")
    pipeline_file(project / "pipeline.yaml", {"name": "p", "steps": {"s": {"notebook": "s.ipynb"}}})
    result = CliRunner().invoke(main, ["schedule", "pipeline.yaml", "--every", "1h"])
    assert result.exit_code != 0
    assert f"the Jupyter server at {plain_server['url']}" in result.output
    assert "has no jupyter-scheduler" in result.output
    assert not (project / ".mlops" / "schedules" / "pipeline-p.ipynb").exists()


def test_unschedule_an_unknown_name(project: Path, scheduler_server: JupyterServer) -> None:
    with pytest.raises(
        ScheduleError, match=r"no schedule named 'nightly' \(this project's: none\)"
    ):
        unschedule("nightly")
    assert "no schedules" in CliRunner().invoke(main, ["schedules"]).output


@pytest.mark.parametrize(
    ("every", "cron"),
    [("10s", "* * * * * */10"), ("1m", "* * * * *"), ("15m", "*/15 * * * *"), ("60m", "0 * * * *"),
     ("6h", "0 */6 * * *"), ("24h", "0 0 * * *"), ("1d", "0 0 * * *")],
)  # fmt: skip
def test_every_as_cron(every: str, cron: str) -> None:
    assert every_to_cron(every)[0] == cron
    assert check_cron(cron) == cron
