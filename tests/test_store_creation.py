"""The embedded store is created whole or not at all: a process killed while MLflow creates
its tables and runs its migrations leaves a project whose store the next process opens."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jupyter_mlops import store
from tests.conftest import settings_for

_OPEN = """
from jupyter_mlops import store
from jupyter_mlops.config import load_settings
store.client(load_settings())
"""


@pytest.mark.slow
def test_a_process_killed_while_the_store_is_created_leaves_none_half_made(
    project: Path,
) -> None:
    settings = settings_for(project)
    db = settings.state_dir / "mlflow.db"
    scratch = db.with_name(db.name + ".new")
    kills = 0
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-c", _OPEN], cwd=project)
        try:
            deadline = time.monotonic() + 120
            # MLflow is creating the schema once its scratch file exists
            while not scratch.exists() and proc.poll() is None:
                assert time.monotonic() < deadline, "the store was not created within 120 s"
                time.sleep(0.01)
            time.sleep(0.2 * kills)  # early, then deeper into the migrations
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                kills += 1
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=60)
        assert not db.exists() or db.stat().st_size == 0 or proc.returncode == 0
    assert kills >= 1, "every process finished the store before it could be killed"
    store.forget_clients()
    client = store.client(settings)
    assert [e.name for e in client.search_experiments()] == ["Default"]
    assert not scratch.exists()
    assert oct(db.stat().st_mode & 0o777) == "0o600"
