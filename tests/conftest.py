"""Shared fixtures: a temporary project with its own embedded MLflow store, and helpers that
execute real notebooks in real kernels."""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import nbformat
import pytest
from nbclient import NotebookClient

from jupyter_mlops import store
from jupyter_mlops.config import Settings, load_settings
from jupyter_mlops.tracking.drainer import drain_orphans

ENV_KEYS = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_REGISTRY_URI",
    "JUPYTER_MLOPS_NOTEBOOK",
    "JUPYTER_MLOPS_SESSION_RUN_ID",
    "JUPYTER_MLOPS_PARENT_RUN_ID",
    "JUPYTER_MLOPS_ARTIFACT_ROOT",
    "JPY_SESSION_NAME",
)

#: an MLflow tracking server URL: the `project` fixture's store instead of its own SQLite file
TEAM_SERVER = os.environ.get("JUPYTER_MLOPS_TEST_TRACKING_URI", "")

#: seconds a test waits for a state another process or thread reaches on its own; generous,
#: because on a busy 2-core machine a flush due in half a second can take many
WAIT_S = 60.0
#: seconds between two looks at that state
POLL_S = 0.05

T = TypeVar("T")

#: the test files that take longest (a kernel per pipeline step, a writer started two dozen
#: times, models packaged and served), handed to the workers first so that the run does not
#: end with one worker busy on one of them and the others idle (``make test`` passes
#: ``--no-loadscope-reorder``, or xdist would hand out the files with most tests first). A
#: scheduling hint only: a file not named here runs in collection order after them.
HEAVIEST_FIRST = (
    "tests/pipelines/test_standard_pipeline.py",
    "tests/tracking/test_exactly_once.py",
    "tests/serving/test_zipmap.py",
    "tests/pipelines/test_runner.py",
    "tests/packaging/test_package.py",
    "tests/serving/test_mlflow_parity.py",
    "tests/serving/test_capture.py",
    "tests/tracking/test_store_outage.py",
    "tests/pipelines/test_cached_cli.py",
    "tests/serving/test_oip_tritonclient.py",
    "tests/serving/test_server.py",
    "tests/serving/test_request_ids.py",
    "tests/analysis/test_evaluate_step.py",
    "tests/registry/test_registry.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Heaviest files first; within a file, and for every other file, collection order."""
    rank = {path: i for i, path in enumerate(HEAVIEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.partition("::")[0], len(rank)))


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty project (it has an ``mlops.yaml``) as the working directory."""
    root = tmp_path / "project"
    root.mkdir()
    (root / "mlops.yaml").write_text("")
    for key in ENV_KEYS:
        monkeypatch.delenv(key, raising=False)
    if TEAM_SERVER:  # scripts/team-tests.sh: the store is a shared tracking server
        monkeypatch.setenv("MLFLOW_TRACKING_URI", TEAM_SERVER)
        monkeypatch.setenv("MLFLOW_REGISTRY_URI", TEAM_SERVER)
    monkeypatch.chdir(root)
    yield root
    store.forget_clients()


def settings_for(root: Path) -> Settings:
    return load_settings(root)


def write_notebook(path: Path, cells: list[str]) -> Path:
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(src) for src in cells],
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
    )
    nbformat.write(nb, path)
    return path


def execute_notebook(path: Path, env: dict[str, str] | None = None, timeout: int = 120) -> Any:
    """Run ``path`` in a fresh kernel the way a front end would; errors stay in the outputs."""
    nb = nbformat.read(path, as_version=4)
    saved = dict(os.environ)
    os.environ["JUPYTER_MLOPS_NOTEBOOK"] = str(path)
    os.environ.update(env or {})
    try:
        NotebookClient(
            nb,
            kernel_name="python3",
            timeout=timeout,
            allow_errors=True,
            resources={"metadata": {"path": str(path.parent)}},
        ).execute()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    nbformat.write(nb, path)
    return nb


def cell_text(cell: Any) -> str:
    """Everything a cell printed: streams, results and error names."""
    parts = []
    for out in cell.get("outputs", []):
        if out["output_type"] == "stream":
            parts.append(out["text"])
        elif out["output_type"] in ("execute_result", "display_data"):
            parts.append(out["data"].get("text/plain", ""))
        elif out["output_type"] == "error":
            parts.append(f"{out['ename']}: {out['evalue']}")
    return "".join(parts)


def stdout_lines(cell: Any) -> list[str]:
    """The lines a cell printed to stdout: MLflow's notices go to stderr, and a stderr chunk
    without its newline would otherwise run into the next printed line."""
    text = "".join(
        out["text"]
        for out in cell.get("outputs", [])
        if out["output_type"] == "stream" and out.get("name") == "stdout"
    )
    return text.splitlines()


def drain(root: Path) -> None:
    """Make sure every journal of the project reached the store."""
    summary = drain_orphans(settings_for(root), wait=60)
    assert not summary.failed, summary.failed


def runs_in_db(db: Path) -> int:
    """Runs in an embedded store right now, read without MLflow (0 before it exists)."""
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    except sqlite3.OperationalError:
        return 0
    try:
        return int(conn.execute("SELECT count(*) FROM runs").fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()


#: a writer runs at nice 10: beside busy processes its start-up (it imports MLflow) gets a
#: small share of the CPU
WRITER_START_S = 300


def wait_for_more_runs(db: Path, proc: subprocess.Popen[bytes], seen: int) -> int:
    """Until a writer process has written more than ``seen`` runs, or exited."""
    deadline = time.monotonic() + WRITER_START_S
    while time.monotonic() < deadline:
        now = runs_in_db(db)
        if now > seen or proc.poll() is not None:
            return now
        time.sleep(0.02)
    raise AssertionError(f"the writer wrote nothing within {WRITER_START_S} s")


def runs_of_kind(root: Path, kind: str, experiment: str | None = None) -> list[Any]:
    settings = settings_for(root)
    client = store.client(settings)
    if experiment is None:
        ids = [e.experiment_id for e in client.search_experiments()]
    else:
        exp = client.get_experiment_by_name(experiment)
        assert exp is not None, f"no experiment {experiment}"
        ids = [exp.experiment_id]
    return list(
        client.search_runs(
            ids,
            filter_string=f"tags.`mlops.kind` = '{kind}'",
            max_results=10_000,
            order_by=["attributes.start_time ASC"],
        )
    )


def wait_until(
    check: Callable[[], T | None], what: str, timeout: float = WAIT_S, every: float = POLL_S
) -> T:
    """Poll ``check()`` until it returns something other than None or False; that value.

    Raises AssertionError naming ``what`` once ``timeout`` seconds passed without it.

    >>> rows = wait_until(lambda: captured_rows("prod", settings, 10), "10 rows")  # doctest: +SKIP
    """
    deadline = time.monotonic() + timeout
    while (value := check()) is None or value is False:
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not reached within {timeout:g} s")
        time.sleep(every)
    return value


async def wait_until_async(
    check: Callable[[], T | None], what: str, timeout: float = WAIT_S, every: float = POLL_S
) -> T:
    """``wait_until`` for a test on an event loop: the loop (a Jupyter server) keeps running."""
    deadline = time.monotonic() + timeout
    while (value := check()) is None or value is False:
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not reached within {timeout:g} s")
        await asyncio.sleep(every)
    return value


def captured_rows(deployment_id: str, settings: Settings, rows: int) -> Any:
    """The deployment's captured requests (``inference_log``) once at least ``rows`` rows are
    on disk, else None: the server's capture writer flushes on its own schedule."""
    from jupyter_mlops.exceptions import NotFoundError
    from jupyter_mlops.serving import manager

    try:
        frame = manager.inference_log(deployment_id, settings=settings)
    except NotFoundError:  # nothing written yet
        return None
    return frame if len(frame) >= rows else None


def wait_for_capture(
    deployment_id: str, settings: Settings, rows: int, timeout: float = WAIT_S
) -> Any:
    """``inference_log(deployment_id)`` once it holds at least ``rows`` rows."""
    return wait_until(
        lambda: captured_rows(deployment_id, settings, rows),
        f"{rows} captured rows of deployment {deployment_id!r}",
        timeout,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


#: servers started by start_mlflow_server, stopped after the test that started them
_STARTED_SERVERS: list[subprocess.Popen[bytes]] = []


def start_mlflow_server(workdir: Path, port: int) -> subprocess.Popen[bytes]:
    """A real MLflow tracking server on 127.0.0.1 with its own SQLite backend.

    Stop it with ``jupyter_mlops.team.server.stop_server``; one still running when its test
    ends, failed or not, is stopped then.
    """
    from jupyter_mlops.team.server import TeamServer, start_server

    workdir.mkdir(parents=True, exist_ok=True)
    server = TeamServer(
        backend_store_uri=f"sqlite:///{workdir / 'server.db'}",
        artifacts_destination=str(workdir / "artifacts"),
        port=port,
        workers=1,
    )
    proc = start_server(server, workdir / "server.log", ready_timeout=300)
    _STARTED_SERVERS.append(proc)
    return proc


@pytest.fixture(autouse=True)
def _stop_started_servers() -> Iterator[None]:
    yield
    while _STARTED_SERVERS:
        from jupyter_mlops.team.server import stop_server

        stop_server(_STARTED_SERVERS.pop())


def stop_deployments(settings: Settings) -> None:
    """Stop every deployment of a project that still runs; when ``undeploy`` fails, its
    process group is stopped anyway, and the first error is raised after the others."""
    from jupyter_mlops._process import stop_process
    from jupyter_mlops.serving import manager

    errors: list[Exception] = []
    for d in manager.deployments(settings=settings):
        if d.status == "stopped":
            continue
        try:
            manager.undeploy(d.id, settings=settings)
        except Exception as err:
            errors.append(err)
            stop_process(d.pid)
    if errors:
        raise errors[0]


@pytest.fixture
def stop_later() -> Iterator[Callable[[subprocess.Popen[Any] | int], None]]:
    """``stop_later(proc_or_pid)``: stopped (SIGTERM, then SIGKILL; its whole group when it
    leads one) when the test ends, passed or failed, newest first."""
    from jupyter_mlops._process import stop_process

    started: list[subprocess.Popen[Any] | int] = []
    yield started.append
    errors = []
    for target in reversed(started):
        try:
            stop_process(target)
        except Exception as err:  # stop the others, then report
            errors.append(err)
    if errors:
        raise errors[0]
