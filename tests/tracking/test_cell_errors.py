"""A failed cell's run says where it stopped: line, code, function and a traceback tail."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import nbformat
import pytest

from jupyter_mlops import store
from jupyter_mlops.tracking.queries import notebook_runs
from tests.conftest import drain, execute_notebook, runs_of_kind, settings_for, write_notebook

CELLS = [
    "%load_ext jupyter_mlops",
    "# mlops: setup the tools\nimport math",
    "def inner(x):\n    return 1 / x\n\nvalue = 2\ninner(0)\nafter = 1",
    "started = 1\nraise KeyboardInterrupt\nlater = 2",
    "x = (",
    'token = "ghp_' + "a" * 36 + '"\nraise RuntimeError(token)',
]


@pytest.fixture(scope="module")
def failed(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("errors")
    (root / "mlops.yaml").write_text("")
    saved = os.getcwd()
    env_saved = {
        k: os.environ.pop(k)
        for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
        if k in os.environ
    }
    os.chdir(root)
    try:
        path = write_notebook(root / "nb.ipynb", CELLS)
        ids = [c["id"] for c in nbformat.read(path, as_version=4).cells]
        execute_notebook(path)
        drain(root)
        runs = {
            int(r.data.tags["mlops.execution_count"]) - 1: r for r in runs_of_kind(root, "cell")
        }
        page = notebook_runs(settings_for(root), "nb.ipynb", "nb.ipynb")
        yield {"root": root, "ids": ids, "runs": runs, "page": page}
    finally:
        os.chdir(saved)
        os.environ.update(env_saved)
        store.forget_clients()


def test_the_last_frame_in_the_cell_is_recorded_with_its_line(failed: Any) -> None:
    tags = failed["runs"][2].data.tags
    assert tags["mlops.error_type"] == "ZeroDivisionError"
    assert tags["mlops.error_line"] == "2"
    assert tags["mlops.error_code"] == "return 1 / x"
    assert tags["mlops.error_where"] == "inner"
    tail = tags["mlops.error_traceback"]
    assert "Cell, line 5, in <module>" in tail
    assert "Cell, line 2, in inner" in tail
    assert tail.rstrip().endswith("ZeroDivisionError: division by zero")
    assert "interactiveshell" not in tail  # IPython's own frames are left out


def test_an_interrupted_cell_says_where_it_was(failed: Any) -> None:
    run = failed["runs"][3]
    assert run.info.status == "KILLED"
    assert run.data.tags["mlops.error_line"] == "2"
    assert run.data.tags["mlops.error_code"] == "raise KeyboardInterrupt"
    assert "mlops.error_where" not in run.data.tags
    [row] = [r for r in failed["page"].runs if r.execution_count == "4"]
    assert row.error == "KeyboardInterrupt"  # no dangling colon
    assert row.error_line == 2


def test_a_syntax_error_is_placed_at_its_line(failed: Any) -> None:
    tags = failed["runs"][4].data.tags
    assert tags["mlops.error_type"] == "SyntaxError"
    assert tags["mlops.error_line"] == "1"
    assert tags["mlops.error_code"] == "x = ("


def test_secrets_in_the_failing_line_and_traceback_are_masked(failed: Any) -> None:
    tags = failed["runs"][5].data.tags
    secret = "ghp_" + "a" * 36
    assert tags["mlops.error_line"] == "2"
    assert secret not in tags["mlops.error_code"] + tags["mlops.error_traceback"]
    assert secret not in tags["mlops.error_message"]


def test_rows_carry_cell_id_label_and_error_place(failed: Any) -> None:
    rows = {r.execution_count: r for r in failed["page"].runs}
    assert rows["2"].label == "setup the tools"
    assert rows["2"].source_preview == "setup the tools"
    # nbclient sends no cell id (JupyterLab does: the browser tests go to the cell by it)
    assert rows["3"].cell_id in (None, failed["ids"][2])
    assert rows["3"].source_preview == "def inner(x):"
    assert (rows["3"].error_line, rows["3"].error_code, rows["3"].error_where) == (
        2,
        "return 1 / x",
        "inner",
    )
    assert "Cell, line 2, in inner" in (rows["3"].error_traceback or "")
    assert rows["3"].error == "ZeroDivisionError: division by zero"
    assert rows["2"].error is None and rows["2"].error_line is None


def test_a_pending_record_carries_the_same_fields(failed: Any) -> None:
    from jupyter_mlops.tracking.queries import _pending_cell

    record = {
        "id": "r1",
        "source": "# mlops: fit\nmodel.fit()",
        "status": "FAILED",
        "start": 1,
        "error": {"type": "ValueError", "message": "", "line": 2, "code": "model.fit()"},
    }
    row = _pending_cell(record, "nb.ipynb", None)
    assert (row.label, row.source_preview, row.error, row.error_line, row.error_code) == (
        "fit",
        "fit",
        "ValueError",
        2,
        "model.fit()",
    )
    assert Path(failed["root"]).is_dir()
