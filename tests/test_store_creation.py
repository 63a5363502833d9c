"""The embedded store is created whole or not at all: a process killed while MLflow creates
its tables and runs its migrations leaves a project whose store the next process opens."""

from __future__ import annotations

import os
import signal
import sqlite3
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
    for i in range(3):
        # no schema template yet: each process builds one, then the store from it
        cache = project.parent / f"cache{i}"
        env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
        template = cache / "jupyter-mlops"
        proc = subprocess.Popen([sys.executable, "-c", _OPEN], cwd=project, env=env)
        try:
            deadline = time.monotonic() + 120
            # MLflow is creating a schema once a scratch file of the store or template exists
            while not scratch.exists() and not list(template.glob("*.tmp")) and proc.poll() is None:
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
        # a template is whole or absent: a killed builder leaves only its .tmp
        for made in template.glob("*.db"):
            assert store_tables(made) and proc.returncode == 0
    assert kills >= 1, "every process finished the store before it could be killed"
    store.forget_clients()
    client = store.client(settings)
    assert [e.name for e in client.search_experiments()] == ["Default"]
    assert not scratch.exists()
    assert oct(db.stat().st_mode & 0o777) == "0o600"


def store_tables(db: Path) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        return [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    finally:
        conn.close()


def test_a_new_store_is_copied_from_a_template_made_once(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    template = store.schema_template_path()
    assert not template.exists()
    settings = settings_for(project)
    client = store.client(settings)
    [default] = client.search_experiments()
    # experiment 0 is the store's own, with this project's artifact root, not the template's
    assert default.name == "Default"
    assert default.artifact_location.startswith((settings.state_dir).as_uri())
    assert "experiments" in store_tables(template)
    conn = sqlite3.connect(template)
    try:
        assert conn.execute("SELECT count(*) FROM experiments").fetchone() == (0,)
    finally:
        conn.close()
    made = template.stat().st_mtime_ns

    other = tmp_path / "other"
    other.mkdir()
    (other / "mlops.yaml").write_text("")
    store.forget_clients()
    second = settings_for(other)
    run = store.client(second).create_run("0")
    assert template.stat().st_mtime_ns == made  # copied, not built again
    assert (
        store.client(second)
        .get_run(run.info.run_id)
        .info.artifact_uri.startswith(second.state_dir.as_uri())
    )
    db = second.state_dir / "mlflow.db"
    assert oct(db.stat().st_mode & 0o777) == "0o600"
    assert not list(template.parent.glob("*.tmp"))


def test_an_unusable_template_is_made_anew(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    template = store.schema_template_path()
    template.parent.mkdir(parents=True)
    template.write_bytes(b"not a database at all" * 100)
    client = store.client(settings_for(project))
    assert [e.name for e in client.search_experiments()] == ["Default"]
    client.create_run("0")
    assert "experiments" in store_tables(template)  # made anew
