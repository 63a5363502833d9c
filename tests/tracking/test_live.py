"""The running cell, seen before it ends: the live file's writer and, in a real kernel, the
running row of the runs answer with the metrics logged so far."""

from __future__ import annotations

import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_client.manager import start_new_kernel

from jupyter_mlops import store
from jupyter_mlops.tracking import live
from jupyter_mlops.tracking.live import LiveWriter, history_of, read_live
from jupyter_mlops.tracking.queries import change_marker, notebook_runs
from tests.conftest import ENV_KEYS, WAIT_S, settings_for, wait_until
from tests.tracking.kernel import execute


@dataclass
class Cell:
    start: float
    raw: str = "import time\nmodel.fit(x, y)  # the long one\n"
    cell_id: str | None = "c1"
    skip: bool = False
    record_id: str = "r1"
    metrics: list[list[Any]] = field(default_factory=list)


def writer(tmp_path: Path, holder: list[Cell | None]) -> LiveWriter:
    return LiveWriter(tmp_path / "s.live.json", lambda: holder[0], lambda s: s)


def test_a_short_cell_writes_nothing_and_a_long_one_its_line_and_metrics(tmp_path: Path) -> None:
    holder: list[Cell | None] = [Cell(start=time.time())]
    w = writer(tmp_path, holder)
    w.look()
    assert not w.path.exists()  # under a second old
    cell = Cell(start=time.time() - 2 * live.SHOW_AFTER_S)
    holder[0] = cell
    w.look()
    found = read_live(w.path)
    assert found is not None
    assert (found.record_id, found.cell_id, found.history) == ("r1", "c1", {})
    assert found.source_preview == "model.fit(x, y) # the long one"
    assert found.start == int(cell.start * 1000)
    assert stat.S_IMODE(os.stat(w.path).st_mode) == 0o600
    cell.metrics += [["loss", 0.5, 0, 1], ["loss", 0.25, 1, 2]]
    w.look()
    found = read_live(w.path)
    assert found is not None and found.history == {"loss": [[0.0, 0.5], [1.0, 0.25]]}
    assert found.metrics == {"loss": 0.25}
    holder[0] = None  # the cell ended
    w.look()
    assert not w.path.exists()


def test_the_file_is_rewritten_only_when_a_metric_came(tmp_path: Path) -> None:
    holder: list[Cell | None] = [Cell(start=time.time() - 5)]
    w = writer(tmp_path, holder)
    w.look()
    first = w.path.stat().st_mtime_ns
    os.utime(w.path, ns=(first - 10**9, first - 10**9))
    w.look()
    assert w.path.stat().st_mtime_ns == first - 10**9  # nothing new: not touched


def test_a_skipped_cell_and_a_stopped_writer_leave_no_file(tmp_path: Path) -> None:
    holder: list[Cell | None] = [Cell(start=time.time() - 5, skip=True)]
    w = writer(tmp_path, holder)
    w.look()
    assert not w.path.exists()
    holder[0] = Cell(start=time.time() - 5)
    w.look()
    assert w.path.exists()
    w.stop()
    assert not w.path.exists()


def test_history_keeps_the_last_value_of_a_step_and_caps_points_and_names() -> None:
    rows: list[list[Any]] = [["a", float(i), i, 0] for i in range(live.MAX_POINTS + 50)]
    rows.append(["a", -1.0, 3, 0])  # the same step again: the later value wins
    rows += [[f"m{i}", 1.0, 0, 0] for i in range(live.MAX_METRICS + 5)]
    found = history_of(rows)
    assert len(found["a"]) == live.MAX_POINTS
    assert found["a"][-1] == [live.MAX_POINTS + 49.0, live.MAX_POINTS + 49.0]
    assert len(found) == live.MAX_METRICS
    assert history_of([["a", 1.0, 3, 0], ["a", -1.0, 3, 0]]) == {"a": [[3.0, -1.0]]}


def test_an_unreadable_file_is_no_running_cell(tmp_path: Path) -> None:
    path = tmp_path / "s.live.json"
    assert read_live(path) is None
    path.write_text("{not json")
    assert read_live(path) is None
    path.write_text('{"start": 1}')
    assert read_live(path) is None


LONG_CELL = """\
import pathlib, time
import jupyter_mlops
api_token = "sk-live-0123456789abcdef0123456789abcdef"
for epoch in range(3):
    jupyter_mlops.log_metrics({"loss": 1 / (epoch + 1)}, step=epoch)
while not pathlib.Path("gate").exists():
    time.sleep(0.05)
jupyter_mlops.log_metrics({"loss": 0.125}, step=3)
"""


def test_a_running_cell_shows_with_its_metrics_then_as_its_record(tmp_path: Path) -> None:
    # a blocking client of its own: the cell runs on while this thread polls the runs answer
    (tmp_path / "mlops.yaml").write_text("")
    env = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
    env["JUPYTER_MLOPS_NOTEBOOK"] = str(tmp_path / "nb.ipynb")
    km, kc = start_new_kernel(kernel_name="python3", cwd=str(tmp_path), env=env)
    try:
        execute(kc, "%load_ext jupyter_mlops")
        execute(kc, "x = 1")
        settings = settings_for(tmp_path)
        journal_dir = settings.journal_dir
        assert not list(journal_dir.glob("*.live.json"))  # a short cell writes nothing

        def page() -> Any:
            return notebook_runs(settings, "nb.ipynb", "nb.ipynb")

        def running() -> list[Any]:
            return [r for r in page().pending if r.status == "RUNNING"]

        before = change_marker(settings, "nb.ipynb")
        msg_id = kc.execute(LONG_CELL)
        try:
            wait_until(lambda: len(running()) == 1, "a running row")
            row = running()[0]
            assert row.history == {"loss": [[0.0, 1.0], [1.0, 0.5], [2.0, 1 / 3]]}
            assert row.metrics == {"loss": 1 / 3}
            assert row.duration_s is None and row.pending
            assert row.start_time > 0 and row.record_id
            assert "sk-live" not in row.source_preview
            assert change_marker(settings, "nb.ipynb") != before  # so a poll sees it
            record_id = row.record_id
        finally:
            (tmp_path / "gate").touch()
        reply = kc.get_shell_msg(timeout=WAIT_S)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = kc.get_shell_msg(timeout=WAIT_S)
        assert reply["content"]["status"] == "ok", reply["content"]

        def ended() -> bool:
            rows = page()
            return not running() and any(
                r.record_id == record_id and r.status == "FINISHED"
                for r in rows.pending + rows.runs
            )

        wait_until(ended, "the running row to become the record")
        rows = page()
        done = next(r for r in rows.pending + rows.runs if r.record_id == record_id)
        assert done.metrics["loss"] == 0.125 and done.history is None
        wait_until(lambda: not list(journal_dir.glob("*.live.json")), "the file removed")
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
        store.forget_clients()
