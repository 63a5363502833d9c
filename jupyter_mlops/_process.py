"""Stopping a process and everything it started: SIGTERM, a grace period, then SIGKILL.

The servers this package starts (``mlflow server`` with its uvicorn workers, model servers)
run in a session of their own, so their process group is their whole tree: stopping the
group stops the workers too, even once their parent has gone.

>>> proc = subprocess.Popen(["sleep", "60"], start_new_session=True)  # doctest: +SKIP
>>> stop_process(proc)  # doctest: +SKIP
-15
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from typing import Any

from .exceptions import MlopsError

#: seconds a process gets to exit after SIGTERM, then after SIGKILL
GRACE_S = 10.0
KILL_AFTER_S = 5.0
_POLL_S = 0.05


class ProcessStopError(MlopsError):
    """A process could not be signalled, or outlived SIGKILL."""


def stop_process(
    target: subprocess.Popen[Any] | int,
    *,
    grace: float = GRACE_S,
    kill_after: float = KILL_AFTER_S,
    group: bool = True,
) -> int | None:
    """Stop ``target`` (a ``Popen`` or a pid): SIGTERM, wait up to ``grace`` seconds, SIGKILL.

    With ``group=True`` and a target that leads its own process group (started with
    ``start_new_session=True`` or ``setsid``), every process of that group gets the signals
    and the call returns once all of them exited. A target in someone else's group (ours,
    a shell's) is signalled alone. Returns the exit code when it is known (a ``Popen``, or a
    pid that is a child of this process; negative for a signal), None otherwise, and None
    at once for a process that is already gone. Raises ProcessStopError when a process
    cannot be signalled or is still there ``kill_after`` seconds after SIGKILL.
    """
    proc = target if isinstance(target, subprocess.Popen) else None
    pid = target.pid if isinstance(target, subprocess.Popen) else int(target)
    if pid <= 0:
        raise ProcessStopError(f"not a process id: {pid}")
    pgid = _own_group(pid) if group else None
    code: list[int | None] = [None]

    def leader_gone() -> bool:
        if proc is not None:
            code[0] = proc.poll()
            return code[0] is not None
        reaped = _reap(pid)
        if reaped is not None:
            code[0] = reaped
            return True
        return not _alive(pid)

    def gone() -> bool:
        # the leader is polled first, so it is reaped (not a zombie of the group) when ours
        return leader_gone() and (pgid is None or not _group_alive(pgid))

    if gone():
        return code[0]
    for signum, wait_s in ((signal.SIGTERM, grace), (signal.SIGKILL, kill_after)):
        _send(pid, pgid, signum)
        if _wait_until(gone, wait_s):
            return code[0]
    what = f"process group {pgid}" if pgid is not None else f"process {pid}"
    raise ProcessStopError(f"{what} is still running {kill_after:g} s after SIGKILL")


def _own_group(pid: int) -> int | None:
    """``pid`` as a process group id when it leads its own group (and it is not ours)."""
    try:
        pgid = os.getpgid(pid)
    except ProcessLookupError:
        # the leader is gone, maybe reaped already; its group lives on while a member does
        pgid = pid if _group_alive(pid) else -1
    except PermissionError:
        return None
    if pgid != pid or pgid == os.getpgid(0):
        return None  # signalling someone else's group (or ours) would stop strangers
    return pgid


def _send(pid: int, pgid: int | None, signum: signal.Signals) -> None:
    try:
        if pgid is not None:
            os.killpg(pgid, signum)
        else:
            os.kill(pid, signum)
    except ProcessLookupError:
        pass  # it exited meanwhile: the next check sees it gone
    except PermissionError as err:
        raise ProcessStopError(f"cannot send {signum.name} to process {pid}: {err}") from None


def _wait_until(done: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL_S)
    return True


def _reap(pid: int) -> int | None:
    """The exit code of ``pid`` when it is our child and has exited (reaping it), else None."""
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return None
    return os.waitstatus_to_exitcode(status) if done == pid else None


def _state(pid: int) -> str | None:
    """The one-letter state of ``pid`` from /proc (``Z`` for a zombie), None if unknown."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[-1].split()[0]
    except (OSError, IndexError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _state(pid) != "Z"  # a zombie has exited; only its parent's wait is missing


def _group_alive(pgid: int) -> bool:
    """Whether a process of group ``pgid`` still runs (zombies waiting for a parent do not)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        entries = os.listdir("/proc")
    except OSError:
        return True  # no /proc: the signal check above is all we know
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as fh:
                fields = fh.read().rsplit(")", 1)[-1].split()
        except OSError:
            continue  # exited while we looked
        # after the command: state, ppid, pgrp
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            return True
    return False
