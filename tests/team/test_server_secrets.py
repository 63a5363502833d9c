"""The team server's database password stays off every command line (``ps`` shows those to
every user) and out of what it prints; its ``jupyter mlops server`` stops with its workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from jupyter_mlops.team.server import TeamServer, redact
from tests.conftest import ENV_KEYS, free_port
from tests.team.processes import alive, cmdline, tree

#: a PostgreSQL database reached with a password, from scripts/team-tests.sh
POSTGRES = os.environ.get("JUPYTER_MLOPS_TEST_POSTGRES_URI", "")


def test_passwords_are_masked() -> None:
    assert (
        redact("postgresql://team:s3cret@db:5432/mlflow") == "postgresql://team:***@db:5432/mlflow"
    )
    assert redact("postgresql+psycopg2://u:p%40ss@db/m?sslmode=require") == (
        "postgresql+psycopg2://u:***@db/m?sslmode=require"
    )
    assert redact("mysql://u:a@b@[::1]:3306/m") == "mysql://u:***@[::1]:3306/m"
    assert redact("postgresql://u:@DB.internal/m") == "postgresql://u:***@DB.internal/m"
    for plain in ("postgresql://u@db/m", "sqlite:///x.db", "/srv/artifacts", "s3://bucket/a"):
        assert redact(plain) == plain


def test_the_command_line_holds_no_secret_and_the_messages_mask_it() -> None:
    server = TeamServer(
        backend_store_uri="postgresql+psycopg2://team:p%40ss-word@db:5432/mlflow",
        artifacts_destination="https://ci:art-token@files.internal/mlflow",
    )
    assert not [a for a in server.command() if "word" in a or "token" in a or "://" in a]
    assert server.environment() == {
        "MLFLOW_BACKEND_STORE_URI": "postgresql+psycopg2://team:p%40ss-word@db:5432/mlflow",
        "MLFLOW_ARTIFACTS_DESTINATION": "https://ci:art-token@files.internal/mlflow",
    }
    summary = server.summary()
    assert "runs and registry: postgresql+psycopg2://team:***@db:5432/mlflow" in summary
    assert "artifacts:         https://ci:***@files.internal/mlflow" in summary
    assert "word" not in str(server.to_dict()) and "token" not in str(server.to_dict())
    log = (
        "sqlalchemy: could not connect to postgresql+psycopg2://team:p%40ss-word@db:5432/mlflow\n"
        "password p@ss-word rejected; retrying with art-token\n"
    )
    assert server.mask(log) == (
        "sqlalchemy: could not connect to postgresql+psycopg2://team:***@db:5432/mlflow\n"
        "password *** rejected; retrying with ***\n"
    )


def _wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} within {timeout:g} s")
        time.sleep(0.2)


def _start_cli(
    project: Path, uri: str, stop_later: Callable[[Any], None]
) -> tuple[subprocess.Popen[bytes], Path, str]:
    """``jupyter mlops server`` on ``uri`` in ``project``, once it printed its banner."""
    env = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
    # the documented way to keep the URI off this command's own command line too
    env["MLFLOW_BACKEND_STORE_URI"] = uri
    out = project / "cli.out"
    with open(out, "wb") as sink:
        cli = subprocess.Popen(
            [sys.executable, "-m", "jupyter_mlops.cli", "server", "--port", str(free_port())],
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=project,
            env=env,
            start_new_session=True,
        )
    stop_later(cli)
    _wait_for(
        lambda: "(Ctrl-C to stop)" in out.read_text() or cli.poll() is not None,
        600,  # beyond the server's own 300 s to be ready
        "jupyter mlops server did not print its banner",
    )
    banner = out.read_text()
    assert cli.poll() is None, banner
    servers = [p for p in tree(cli.pid) if " mlflow server" in cmdline(p)]
    assert servers, [cmdline(p) for p in tree(cli.pid)]
    stop_later(servers[0])  # a session of its own: stopped with its group if the CLI is not
    return cli, out, banner


BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param(
        "postgresql",
        id="postgresql",
        marks=[
            pytest.mark.team,
            pytest.mark.skipif(
                not POSTGRES, reason="PostgreSQL with a password: scripts/team-tests.sh"
            ),
        ],
    ),
]


@pytest.mark.slow
@pytest.mark.timeout(900)  # a server start and stop on a busy machine
@pytest.mark.parametrize("backend", BACKENDS)
def test_the_cli_server_shows_no_secret_and_stops_with_its_workers(
    backend: str, project: Path, stop_later: Callable[[Any], None]
) -> None:
    if backend == "postgresql":
        uri = POSTGRES
        secret = urlsplit(POSTGRES).password
        assert secret, "JUPYTER_MLOPS_TEST_POSTGRES_URI must hold a password"
    else:
        uri = f"sqlite:///{project / 'team.db'}"
        secret = str(project / "team.db")  # not a secret, but it must not be in argv either
    cli, out, banner = _start_cli(project, uri, stop_later)
    url = banner.split("team tracking server at ", 1)[1].split()[0]

    # the server reached the database with what it got through its environment
    from mlflow import MlflowClient

    client = MlflowClient(url)
    experiment = client.create_experiment(f"secrets-{uuid.uuid4().hex[:8]}")
    run = client.create_run(experiment)
    client.set_terminated(run.info.run_id)
    assert client.get_run(run.info.run_id).info.status == "FINISHED"

    processes = tree(cli.pid)  # now with every worker the requests needed
    assert len(processes) >= 2, [cmdline(p) for p in processes]
    for pid in [cli.pid, *processes]:
        assert secret not in cmdline(pid), cmdline(pid)
        assert "MLFLOW_BACKEND_STORE_URI" not in cmdline(pid)
    log = project / ".mlops" / "logs" / "team-server.log"
    assert log.is_file()
    if backend == "postgresql":
        user, host = urlsplit(uri).username, urlsplit(uri).netloc.rsplit("@", 1)[1]
        assert f"runs and registry: postgresql+psycopg2://{user}:***@{host}/" in banner
        assert secret not in out.read_text() and secret not in log.read_text(errors="replace")

    # SIGTERM (a service manager's stop) reaches only the CLI: it stops the whole server
    os.kill(cli.pid, signal.SIGTERM)
    _wait_for(lambda: cli.poll() is not None, 120, "jupyter mlops server did not exit")
    assert cli.returncode == 0, out.read_text()
    _wait_for(
        lambda: not [p for p in processes if alive(p)],
        60,
        f"server processes outlived the CLI: {[cmdline(p) for p in processes if alive(p)]}",
    )


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_cli_says_when_its_server_dies(
    project: Path, stop_later: Callable[[Any], None]
) -> None:
    cli, out, _ = _start_cli(project, f"sqlite:///{project / 'team.db'}", stop_later)
    [server] = [p for p in tree(cli.pid) if " mlflow server" in cmdline(p)]
    os.killpg(server, signal.SIGKILL)
    _wait_for(lambda: cli.poll() is not None, 120, "jupyter mlops server did not exit")
    log = project / ".mlops" / "logs" / "team-server.log"
    assert cli.returncode == 1
    assert out.read_text().endswith(
        f"error: the tracking server exited with -9; its log: {log}\n"
    ), out.read_text()
