"""Several kernels on one store at once, and kernels that die: no run is lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from jupyter_client.manager import start_new_kernel

from tests.conftest import drain, runs_of_kind, write_notebook
from tests.tracking.kernel import execute

CELLS_PER_KERNEL = 25


@pytest.mark.slow
def test_two_kernels_write_to_one_new_store_without_losing_runs(project: Path) -> None:
    procs = []
    for name in ("left", "right"):
        cells = ["%load_ext jupyter_mlops"] + [
            f"{name}_{i} = {i}\nscore = {i} / 100" for i in range(CELLS_PER_KERNEL)
        ]
        path = write_notebook(project / f"{name}.ipynb", cells)
        env = {**os.environ, "JUPYTER_MLOPS_NOTEBOOK": str(path)}
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "papermill", "--no-progress-bar", str(path), str(path)],
                env=env,
                cwd=project,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
        )
    for proc in procs:
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, out.decode()[-2000:]
    drain(project)
    for name in ("left", "right"):
        [session] = runs_of_kind(project, "session", f"{name}.ipynb")
        cells = runs_of_kind(project, "cell", f"{name}.ipynb")
        assert session.info.status == "FINISHED"
        assert len(cells) == CELLS_PER_KERNEL
        assert sorted(int(c.data.params[f"{name}_{i}"]) for i, c in enumerate(cells)) == list(
            range(CELLS_PER_KERNEL)
        )
        assert {c.data.tags["mlflow.parentRunId"] for c in cells} == {session.info.run_id}
    for log in (project / ".mlops" / "logs").glob("*.log"):
        assert "database is locked" not in log.read_text()


def _run(kc: object, code: str) -> None:
    execute(kc, code, timeout=60)


def _drainer_pid(kc: object) -> int:
    code = "from jupyter_mlops.tracking import api\nprint(api.active_session().drainer.pid)"
    return int(execute(kc, code, timeout=30, stream="stdout").strip())


@pytest.mark.slow
@pytest.mark.parametrize("writer_dies_too", [False, True], ids=["kernel-killed", "both-killed"])
def test_killed_kernel_session_is_closed_killed_with_all_cells(
    project: Path, writer_dies_too: bool
) -> None:
    os.environ["JUPYTER_MLOPS_NOTEBOOK"] = str(project / "crash.ipynb")
    try:
        km, kc = start_new_kernel(kernel_name="python3", cwd=str(project))
    finally:
        del os.environ["JUPYTER_MLOPS_NOTEBOOK"]
    try:
        _run(kc, "%load_ext jupyter_mlops")
        for i in range(3):
            _run(kc, f"value_{i} = {i}")
        drainer = _drainer_pid(kc)
        if writer_dies_too:
            os.kill(drainer, signal.SIGKILL)
        km.shutdown_kernel(now=True)  # SIGKILL: no atexit, no goodbye
    finally:
        kc.stop_channels()
    if not writer_dies_too:
        # the writer outlives the kernel, writes what is left and closes the session itself
        deadline = time.monotonic() + 60
        while list((project / ".mlops" / "journal").glob("*.jsonl")):
            assert time.monotonic() < deadline, "the writer did not finish the journal"
            time.sleep(0.2)
    drain(project)
    [session] = runs_of_kind(project, "session", "crash.ipynb")
    cells = runs_of_kind(project, "cell", "crash.ipynb")
    assert session.info.status == "KILLED"
    # 4 cells: the three assignments and the one that asked for the writer's pid
    assert len(cells) == 4
    assert [c.data.params for c in cells[:3]] == [{f"value_{i}": str(i)} for i in range(3)]
