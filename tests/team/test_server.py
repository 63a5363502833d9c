"""`jupyter mlops server`: its checks, and a real server that a project then uses unchanged."""

from __future__ import annotations

import http.client
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner

from jupyter_mlops import store
from jupyter_mlops.cli import main
from jupyter_mlops.config import load_settings
from jupyter_mlops.exceptions import ConfigError, StoreError
from jupyter_mlops.team.server import (
    plan_server,
    redact,
    start_server,
    stop_server,
    with_driver,
)
from tests.conftest import free_port
from tests.team.processes import alive, tree


def test_a_backend_that_is_not_a_database_is_refused(project: Path) -> None:
    result = CliRunner().invoke(main, ["server", "--backend-store-uri", "mongodb://h/db"])
    assert result.exit_code == 1
    assert (
        "error: --backend-store-uri: backend store URI 'mongodb://h/db' is not a database "
        "MLflow's tracking server can use: give postgresql://USER:PASSWORD@HOST:PORT/DB"
    ) in result.output
    assert "Traceback" not in result.output
    with pytest.raises(ConfigError, match="is not a database"):
        plan_server("./mlruns")


def test_an_unreachable_database_is_named_without_its_password(project: Path) -> None:
    uri = f"postgresql://team:s3cret@127.0.0.1:{free_port()}/mlflow"
    result = CliRunner().invoke(main, ["server", "--backend-store-uri", uri])
    assert result.exit_code == 1
    assert "error: cannot reach the database postgresql+psycopg2://team:***@127.0.0.1:" in (
        result.output
    )
    assert "Connection refused" in result.output
    assert "s3cret" not in result.output and "Traceback" not in result.output


def test_options_come_from_mlops_yaml_and_remote_hosts_need_a_flag(project: Path) -> None:
    result = CliRunner().invoke(main, ["server"])
    assert result.exit_code == 1
    assert "no backend store: pass --backend-store-uri" in result.output
    (project / "mlops.yaml").write_text(
        "team:\n  backend_store_uri: sqlite:///team.db\n  port: 5123\n  host: 0.0.0.0\n"
    )
    exposed = CliRunner().invoke(main, ["server"])
    assert exposed.exit_code == 1
    assert "--host: binding to 0.0.0.0 exposes every run and model" in exposed.output
    assert "pass --allow-remote" in exposed.output
    plan = plan_server(allow_remote=True, check=False)
    assert (plan.host, plan.port) == ("0.0.0.0", 5123)
    assert "no authentication" in plan.warnings[0]
    assert plan.command()[-2:] == ["--allowed-hosts", "*"]
    (project / "mlops.yaml").write_text("team:\n  backend: sqlite:///x.db\n")
    with pytest.raises(ConfigError, match="team: unknown key 'backend'"):
        plan_server()


def test_uri_helpers() -> None:
    assert redact("postgresql://u:pw@db:5432/m") == "postgresql://u:***@db:5432/m"
    assert redact("sqlite:///x.db") == "sqlite:///x.db"
    assert with_driver("postgresql://u@db/m") == "postgresql+psycopg2://u@db/m"
    assert with_driver("postgresql+psycopg2://u@db/m") == "postgresql+psycopg2://u@db/m"


@pytest.mark.slow
def test_a_started_server_stores_runs_and_serves_artifacts(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = project.parent / "team-server"
    work.mkdir()
    plan = plan_server(
        f"sqlite:///{work / 'team.db'}", str(work / "artifacts"), port=free_port(), workers=1
    )
    proc = start_server(plan, work / "server.log", ready_timeout=300)
    try:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", plan.url)
        settings = load_settings(project)
        assert settings.tracking_uri == plan.url and not settings.is_embedded
        client = store.client(settings)
        experiment = store.get_or_create_experiment(settings, "team-check")
        run = client.create_run(experiment)
        (project / "note.txt").write_text("shared")
        client.log_artifact(run.info.run_id, str(project / "note.txt"))
        client.set_terminated(run.info.run_id)
        with tempfile.TemporaryDirectory() as tmp:
            back = client.download_artifacts(run.info.run_id, "note.txt", tmp)
            assert Path(back).read_text() == "shared"
        # the server, not the client, wrote the artifact: into its destination
        assert list((work / "artifacts").rglob("note.txt"))
        workers = tree(proc.pid)
        assert workers, "mlflow server started no worker process"
        assert_an_idle_connection_is_kept(plan.url)
    finally:
        stop_server(proc)
    assert not [pid for pid in workers if alive(pid)], "a worker outlived the server"
    with pytest.raises(StoreError, match="cannot create"):
        plan_server("sqlite:////nonexistent-dir/x.db", str(work / "a"))


def assert_an_idle_connection_is_kept(url: str) -> None:
    """A client's pooled connection, idle past uvicorn's default keep-alive (5 s), still
    answers: a server that closes it races the client's next request on it (reset by peer)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        for idle in (6, 0):
            conn.request("GET", "/health")
            response = conn.getresponse()
            assert response.status == 200 and response.read() == b"OK"
            time.sleep(idle)  # the idle gap itself is what is tested, not a wait for a state
    finally:
        conn.close()
