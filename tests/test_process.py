"""``stop_process``: SIGTERM, a grace period, SIGKILL, for a process and its whole group."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from jupyter_mlops._process import ProcessStopError, stop_process

# a parent that starts a child, both ignoring SIGTERM unless told otherwise, then reports
# both pids once the handlers are in place
TREE = """
import signal, subprocess, sys, time
parent_ignores, child_ignores = sys.argv[1] == "1", sys.argv[2] == "1"
if parent_ignores:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c", '''
import signal, sys, time
if sys.argv[1] == "1":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ready", flush=True)
time.sleep(600)
''', sys.argv[2]], stdout=subprocess.PIPE, text=True)
assert child.stdout.readline() == "ready\\n"
print(child.pid, flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
            return fh.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture
def started() -> Iterator[list[int]]:
    """Pids a test started: whatever is left of them is killed after the test."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        if _alive(pid):
            os.kill(pid, 9)


def _tree(
    started: list[int], *, parent_ignores: bool, child_ignores: bool, new_session: bool = True
) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-c", TREE, str(int(parent_ignores)), str(int(child_ignores))],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=new_session,
    )
    started.append(proc.pid)
    assert proc.stdout is not None
    child = int(proc.stdout.readline())  # blocks until both handlers are in place
    started.append(child)
    return proc, child


def test_a_well_behaved_group_stops_on_sigterm(started: list[int]) -> None:
    proc, child = _tree(started, parent_ignores=False, child_ignores=False)
    assert stop_process(proc, grace=60) == -15
    assert not _alive(child)


def test_a_group_that_ignores_sigterm_is_killed_after_the_grace(started: list[int]) -> None:
    proc, child = _tree(started, parent_ignores=True, child_ignores=True)
    assert stop_process(proc, grace=0.5) == -9
    assert proc.returncode == -9
    assert not _alive(child)


def test_a_worker_that_outlives_its_parent_is_killed_too(started: list[int]) -> None:
    # the parent exits on SIGTERM at once; its child, reparented, still runs
    proc, child = _tree(started, parent_ignores=False, child_ignores=True)
    assert stop_process(proc, grace=0.5) == -15
    assert not _alive(child)
    # a group whose leader is gone and reaped is still found by its id
    assert stop_process(proc) == -15


def test_a_pid_that_is_a_child_gives_its_exit_code(started: list[int]) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; print(1, flush=True); time.sleep(600)"],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    started.append(proc.pid)
    assert proc.stdout is not None
    proc.stdout.readline()
    assert stop_process(proc.pid) == -15
    assert not _alive(proc.pid)
    proc.stdout.close()


def test_a_pid_that_is_not_a_child_is_stopped_without_a_code(started: list[int]) -> None:
    # the shell exits at once: its background job belongs to init (or a subreaper) now
    out = subprocess.run(
        ["setsid", "sh", "-c", "sleep 600 >/dev/null 2>&1 & echo $!"],
        capture_output=True,
        text=True,
        check=True,
    )
    pid = int(out.stdout)
    started.append(pid)
    assert _alive(pid)
    assert stop_process(pid, grace=60) is None
    assert not _alive(pid)


def test_a_process_in_our_own_group_is_signalled_alone(started: list[int]) -> None:
    proc, child = _tree(started, parent_ignores=False, child_ignores=False, new_session=False)
    assert stop_process(proc, grace=60) == -15  # and the test process is still here
    assert _alive(child)  # not in a group of its own, so only the target was signalled
    assert stop_process(child, grace=60) is None
    assert not _alive(child)


def test_a_process_that_is_already_gone() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    proc.wait()
    assert stop_process(proc) == 3


def test_not_a_process_id() -> None:
    with pytest.raises(ProcessStopError, match=r"^not a process id: 0$"):
        stop_process(0)
