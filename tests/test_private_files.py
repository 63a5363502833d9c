"""``.mlops/`` is private: folders 0700, the database (with ``-wal``/``-shm``) and logs 0600,
whichever process created them (the kernel, its writer process, the command line)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import TEAM_SERVER, cell_text, execute_notebook, write_notebook

pytestmark = pytest.mark.skipif(
    bool(TEAM_SERVER), reason="the embedded SQLite store's files; a team store has none here"
)


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """The umask most systems start processes with: new files 0644, new folders 0755."""
    saved = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(saved)


def mode(path: Path) -> str:
    return oct(stat.S_IMODE(path.stat().st_mode))


def assert_private(state: Path) -> None:
    db = state / "mlflow.db"
    assert db.is_file()
    expected = {state: "0o700", db: "0o600"}
    for suffix in ("-wal", "-shm"):
        side = db.with_name(db.name + suffix)
        if side.exists():
            expected[side] = "0o600"
    for folder in ("journal", "logs", "artifacts"):
        if (state / folder).exists():
            expected[state / folder] = "0o700"
    if (state / "logs").exists():
        for log in (state / "logs").iterdir():
            expected[log] = "0o600"
    assert {str(p): mode(p) for p in expected} == {str(p): m for p, m in expected.items()}


def wait_for_writer(state: Path, timeout: float = 120.0) -> None:
    """Until the writer process has moved every journal into the store and removed it."""
    deadline = time.monotonic() + timeout
    while any((state / "journal").glob("*.jsonl")):
        assert time.monotonic() < deadline, "the writer did not finish the journal"
        time.sleep(0.2)


def test_a_kernel_session_leaves_only_private_files(project: Path, usual_umask: None) -> None:
    nb = write_notebook(project / "nb.ipynb", ["%load_ext jupyter_mlops", "lr = 0.1", "y = 2"])
    out = execute_notebook(nb)
    assert "tracking every cell" in cell_text(out.cells[0])
    state = project / ".mlops"
    # the kernel and its writer made these; nothing in this process opens the store
    wait_for_writer(state)
    assert any((state / "logs").glob("drainer-*.log"))
    assert (state / "artifacts").is_dir()  # the executed notebook, logged at session end
    assert_private(state)


def jupyter_mlops(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cli = Path(sys.executable).with_name("jupyter-mlops")
    return subprocess.run(
        [str(cli), *args], cwd=project, capture_output=True, text=True, timeout=120, check=False
    )


def test_the_command_line_creates_a_private_store(project: Path, usual_umask: None) -> None:
    done = jupyter_mlops(project, "runs")
    assert done.returncode == 0, done.stderr
    assert_private(project / ".mlops")


def test_an_older_store_is_made_private_when_next_opened(project: Path, usual_umask: None) -> None:
    state = project / ".mlops"
    assert jupyter_mlops(project, "runs").returncode == 0
    # as an older version left it: readable by everyone
    (state / "logs").mkdir(mode=0o755)
    state.chmod(0o755)
    (state / "mlflow.db").chmod(0o644)
    (state / "logs" / "old.log").write_text("from an older version\n")
    (state / "logs" / "old.log").chmod(0o644)
    done = jupyter_mlops(project, "runs")
    assert done.returncode == 0, done.stderr
    assert_private(state)
