"""The store is down while a kernel runs: cells still succeed, one notice, nothing lost."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from jupyter_mlops.team.server import stop_server
from jupyter_mlops.tracking.drainer import pending_records
from tests.conftest import (
    cell_text,
    drain,
    execute_notebook,
    free_port,
    runs_of_kind,
    settings_for,
    start_mlflow_server,
    wait_until,
    write_notebook,
)

CELLS = [
    "%load_ext jupyter_mlops",
    "a = 1",
    # until the writer has started, imported mlflow and failed against the dead server
    "import time\n"
    "from jupyter_mlops.tracking import api as _api\n"
    "_deadline = time.monotonic() + 100\n"  # inside the 120 s a cell may take
    "while not _api.active_session()._store_warned:\n"
    "    assert time.monotonic() < _deadline, 'the writer never reported the dead store'\n"
    "    time.sleep(0.05)\n"
    "loss = 0.3",
    "b = 2",
    "c = 3\naccuracy = 0.7",
    "d = 4",
]


@pytest.mark.slow
def test_dead_server_then_replay_everything(project: Path, tmp_path: Path) -> None:
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    path = write_notebook(project / "outage.ipynb", CELLS)
    env = {
        "MLFLOW_TRACKING_URI": uri,
        # the writer gives up soon after the kernel exits; the journal keeps the records
        "JUPYTER_MLOPS_DRAIN_GRACE": "1",
        "JUPYTER_MLOPS_EXIT_FLUSH": "1",
    }
    nb = execute_notebook(path, env=env)

    outputs = [cell_text(c) for c in nb.cells]
    assert all(o["output_type"] != "error" for c in nb.cells for o in c.get("outputs", []))
    notices = [o for o in outputs if "tracking store unavailable" in o]
    assert len(notices) == 1, outputs
    assert "records are kept in .mlops/journal/" in notices[0]

    os.environ["MLFLOW_TRACKING_URI"] = uri
    try:
        settings = settings_for(project)
        # wait for the kernel's writer to give up and leave its journal
        wait_until(lambda: pending_records(settings) >= 7, "7 records left in the journal")
        assert pending_records(settings) == 7  # session start, 5 cells, session end

        server = start_mlflow_server(tmp_path / "server", port)
        try:
            drain(project)
            assert pending_records(settings) == 0
            [session] = runs_of_kind(project, "session")
            cells = runs_of_kind(project, "cell")
            assert session.info.status == "FINISHED"
            assert [c.data.tags["mlops.execution_count"] for c in cells] == [
                "2",
                "3",
                "4",
                "5",
                "6",
            ]
            assert cells[1].data.metrics["loss"] == 0.3
            assert cells[3].data.params == {"c": "3"}
            assert list((project / ".mlops" / "journal").glob("*.jsonl")) == []
        finally:
            stop_server(server)
    finally:
        del os.environ["MLFLOW_TRACKING_URI"]
