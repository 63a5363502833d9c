"""The writer process's life: crashes in a row pause writes honestly, a flush resumes them,
and a kernel shut down with a backlog hands it to the writer, which outlives the kernel."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import pytest
from jupyter_client.manager import start_new_kernel

from tests.conftest import drain, runs_of_kind
from tests.tracking.kernel import execute

KILL_WRITER = """
import os, signal, time
from jupyter_mlops.tracking import api
_handle = api.active_session().drainer
_pid = _handle.pid
os.kill(_pid, signal.SIGKILL)
_deadline = time.monotonic() + 120
while _handle.crashes < {n} and time.monotonic() < _deadline:
    time.sleep(0.02)
print("crashes", _handle.crashes, "alive", _handle.alive)
"""


def _start(project: Path, notebook: str) -> tuple[object, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["JUPYTER_MLOPS_NOTEBOOK"] = str(project / notebook)
    return start_new_kernel(kernel_name="python3", cwd=str(project), env=env)


def _wait_for_no_journal(project: Path) -> None:
    deadline = time.monotonic() + 120
    while list((project / ".mlops" / "journal").glob("*.jsonl")):
        assert time.monotonic() < deadline, "the writer did not finish the journal"
        time.sleep(0.1)


@pytest.mark.slow
def test_a_writer_that_keeps_crashing_pauses_and_a_flush_resumes(project: Path) -> None:
    km, kc = _start(project, "crashy.ipynb")
    try:
        execute(kc, "%load_ext jupyter_mlops")
        execute(kc, "before = 1")
        assert "in the store" in execute(kc, "%mlops flush")
        texts = [execute(kc, KILL_WRITER.format(n=n)) for n in (1, 2, 3)]
        notices = "".join(texts) + execute(kc, "during = 2")
        assert notices.count("restarted it") == 2, notices
        assert notices.count("3 times in a row: tracking writes are paused") == 1, notices
        assert "crashes 3 alive False" in texts[2]
        assert "crashy.ipynb" not in notices or "%mlops flush restarts the writer" in notices
        for i in range(3):
            execute(kc, f"paused_{i} = {i}")
        flushed = execute(kc, "%mlops flush")
        assert "cell records of this session are in the store" in flushed, flushed
    finally:
        km.shutdown_kernel(now=False)
        kc.stop_channels()
    _wait_for_no_journal(project)
    drain(project)
    cells = runs_of_kind(project, "cell", "crashy.ipynb")
    params = [k for c in cells for k in c.data.params]
    assert params == ["before", "during", "paused_0", "paused_1", "paused_2"]
    assert len({c.data.tags["mlops.record_id"] for c in cells}) == len(cells) == 10


@pytest.mark.slow
def test_a_kernel_shut_down_mid_backlog_leaves_it_to_the_writer(project: Path) -> None:
    km, kc = _start(project, "backlog.ipynb")
    lock = None
    try:
        execute(kc, "%load_ext jupyter_mlops")
        execute(kc, "first = 0")
        execute(kc, "%mlops flush")
        # the store is held: every later cell waits in the journal
        lock = sqlite3.connect(project / ".mlops" / "mlflow.db", timeout=30)
        lock.execute("BEGIN EXCLUSIVE")
        for i in range(40):
            execute(kc, f"queued_{i} = {i}")
        started = time.monotonic()
        km.shutdown_kernel(now=False)
        shutdown = time.monotonic() - started
    finally:
        kc.stop_channels()
        if km.is_alive():
            km.shutdown_kernel(now=True)
    assert list((project / ".mlops" / "journal").glob("*.jsonl")), "nothing was left to write"
    lock.rollback()
    lock.close()
    _wait_for_no_journal(project)
    drain(project)
    [session] = runs_of_kind(project, "session", "backlog.ipynb")
    assert session.info.status == "FINISHED"
    cells = runs_of_kind(project, "cell", "backlog.ipynb")
    params = [k for c in cells for k in c.data.params]
    assert params == ["first"] + [f"queued_{i}" for i in range(40)], (params, shutdown)
