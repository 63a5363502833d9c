"""IPython's history and the tracking writer keep out of the way of cells run back to back:
the history is held while cells come one after another and written once the kernel is idle,
and the writer holds off while the journal grows, within a bound."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jupyter_mlops.tracking import drainer

SHELL = r"""
import json, sqlite3, sys, time
from IPython.core.interactiveshell import InteractiveShell
from jupyter_mlops.tracking.history import BUSY_CACHE, HistoryPacer
shell = InteractiveShell.instance()
history = shell.history_manager
before = history.db_cache_size
pacer = HistoryPacer(shell).install()
raised = history.db_cache_size
for i in range(5):
    shell.run_cell(f"a{i} = {i}", store_history=True)
held = len(history.db_input_cache)
deadline = time.monotonic() + 60
while history.db_input_cache and time.monotonic() < deadline:
    time.sleep(0.05)
db = sqlite3.connect(str(history.hist_file))
rows = [r[0] for r in db.execute(
    "SELECT source_raw FROM history WHERE session = ? ORDER BY line", (history.session_number,)
)]
pacer.uninstall()
print(json.dumps({"before": before, "raised": raised, "busy": BUSY_CACHE, "held": held,
                  "rows": rows, "after": history.db_cache_size}))
"""


def test_history_is_held_while_cells_run_and_written_when_idle(tmp_path: Path) -> None:
    env = {**os.environ, "IPYTHONDIR": str(tmp_path / "ipython")}
    done = subprocess.run(
        [sys.executable, "-c", SHELL], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["raised"] == found["busy"] > found["before"]
    assert found["held"] == 5  # none written while the cells came back to back
    assert found["rows"] == [f"a{i} = {i}" for i in range(5)]  # all written once idle
    assert found["after"] == found["before"]


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_writer_holds_off_while_the_journal_grows_within_a_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = _Clock()
    monkeypatch.setattr(drainer.time, "monotonic", clock)
    journal = tmp_path / "j.jsonl"
    journal.write_text("")
    pace = drainer._Pace(journal)
    assert pace.busy()  # first look: it has just changed
    clock.now += drainer.QUIET_S + 0.01
    assert not pace.busy()  # quiet long enough: write
    pace.written()
    for _ in range(int(drainer.HOLD_MAX_S / 0.1) - 1):
        with journal.open("a") as fh:
            fh.write(json.dumps({"x": 1}) + "\n")
        clock.now += 0.1
        assert pace.busy()
    with journal.open("a") as fh:
        fh.write("{}\n")
    clock.now += 0.2
    assert not pace.busy()  # still growing, but the oldest record waited long enough
    pace.written()
    clock.now += 10
    assert not pace.busy()  # nothing new: nothing to hold
    journal.unlink()
    assert not pace.busy()
