"""A full disk loses no record: the journal's records wait in memory and are saved later.

The project lives on a small tmpfs that the test fills with a ballast file, so the disk
itself refuses the writes (ENOSPC), as it would for a user.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from jupyter_client.manager import start_new_kernel

from jupyter_mlops.tracking.journal import JournalPaths, JournalWriter, read_records
from tests.conftest import drain, runs_of_kind
from tests.tracking.kernel import execute

FULL_CELLS = 60


@contextlib.contextmanager
def small_filesystem(where: Path, size: str) -> Iterator[Path]:
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem here: {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(directory: Path) -> Path:
    """Grow a ballast file until the filesystem is full (again: what was freed since the last
    call is taken back)."""
    ballast = directory / "ballast"
    with open(ballast, "ab", buffering=0) as fh:
        for size in (1 << 16, 512, 1):  # big blocks first, then what is left of the last page
            with contextlib.suppress(OSError):
                while True:
                    fh.write(b"\0" * size)
    return ballast


def test_short_writes_wait_in_memory_and_keep_their_order(tmp_path: Path) -> None:
    with small_filesystem(tmp_path / "fs", "256k") as fs:
        paths = JournalPaths.for_session(fs / "journal", "s")
        writer = JournalWriter(paths, max_waiting=5)
        assert writer.append({"n": 0})
        ballast = fill(fs)
        # the journal's last page still has room for a record or two; then a write is cut
        # short at the page's end, and every later one is refused
        results = [writer.append({"n": i, "pad": "x" * 1500}) for i in range(1, 11)]
        fitted = results.count(True)
        assert fitted < 3 and results == [True] * fitted + [False] * (10 - fitted)
        assert writer.error is not None and "No space left" in str(writer.error)
        assert len(writer.waiting) == 5 and writer.dropped == 10 - fitted - 5
        ballast.unlink()
        assert writer.append({"n": 11})
        assert not writer.waiting and writer.error is None
        writer.close()
        numbers = [r["n"] for _, r in read_records(paths.journal, 0)]
        # the torn write was cut off, the oldest waiting ones were dropped and counted, the
        # rest kept their order
        assert numbers == [0, *range(1, fitted + 1), 6, 7, 8, 9, 10, 11]


@pytest.mark.slow
def test_cells_run_on_a_full_disk_are_all_recorded_once_it_is_freed(tmp_path: Path) -> None:
    with small_filesystem(tmp_path / "fs", "48m") as fs:
        project = fs / "project"
        project.mkdir()
        (project / "mlops.yaml").write_text("")
        notebook = project / "full.ipynb"
        env = {
            **os.environ,
            "JUPYTER_MLOPS_NOTEBOOK": str(notebook),
            "MLFLOW_TRACKING_URI": "",
            "MLFLOW_REGISTRY_URI": "",
        }
        env = {k: v for k, v in env.items() if v}
        km, kc = start_new_kernel(kernel_name="python3", cwd=str(project), env=env)
        try:
            execute(kc, "%load_ext jupyter_mlops")
            for i in range(5):
                execute(kc, f"before_{i} = {i}")
            assert "in the store" in execute(kc, "%mlops flush")
            notices = ""
            for i in range(FULL_CELLS):
                # the drainer, ours, frees a page now and then while the disk is full (a
                # drained journal segment, the store's WAL): taken back before each cell, so
                # each starts on a full disk
                ballast = fill(fs)
                notices += execute(kc, f"full_{i} = {i}")
            # told once per outage, not once per cell; a page the drainer frees during a cell
            # (after the refill) can let the journal save what waited and then fill again
            outages = notices.count("cannot write the tracking journal")
            assert outages == notices.count("journal is writable again") + 1, notices
            assert "No space left on device" in notices
            assert "wait in memory" in notices
            status = execute(kc, "%mlops status")
            assert "records waiting" in status, status
            ballast.unlink()
            saved = execute(kc, "after_0 = 0")
            # the 60 cells and the status cell, but for those that fit in the journal's
            # last page before the disk refused
            pattern = r"writable again: (\d+) waiting record\(s\) saved"
            assert re.search(pattern + "$", saved.strip()), saved
            total = sum(int(n) for n in re.findall(pattern, notices + saved))
            assert FULL_CELLS - 10 < total <= FULL_CELLS + 1, notices + saved
            for i in range(1, 5):
                execute(kc, f"after_{i} = {i}")
            execute(kc, "%mlops flush")
        finally:
            km.shutdown_kernel(now=False)
            kc.stop_channels()
        deadline = time.monotonic() + 120
        while list((project / ".mlops" / "journal").glob("*.jsonl")):
            assert time.monotonic() < deadline, "the writer did not finish the journal"
            time.sleep(0.2)
        drain(project)
        cells = runs_of_kind(project, "cell", "full.ipynb")
        params = [next(iter(c.data.params), None) for c in cells]
        expected = (
            [f"before_{i}" for i in range(5)]
            + [None]  # %mlops flush
            + [f"full_{i}" for i in range(FULL_CELLS)]
            + [None]  # the status cell
            + [f"after_{i}" for i in range(5)]
            + [None]
        )
        assert params == expected
        assert len({c.data.tags["mlops.record_id"] for c in cells}) == len(cells)
        assert all(c.info.status == "FINISHED" for c in cells)
