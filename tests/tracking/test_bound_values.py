"""A cell's record holds what this cell bound: never a value left by an earlier cell."""

from __future__ import annotations

from pathlib import Path

import pytest

from jupyter_mlops.tracking.bindings import BeforeCell, bound_by_cell, definite_bindings
from tests.conftest import cell_text, drain, execute_notebook, runs_of_kind, write_notebook

CELLS = [
    "%load_ext jupyter_mlops",
    "val_accuracy = 0.5\nepochs = 10\noptimizer = 'adam'",  # 1: the earlier values
    "val_accuracy = 1 / 0",  # 2: fails before binding
    "lr = 0.1\nval_accuracy = 1 / 0\nbatch = 64",  # 3: binds lr, fails, never binds batch
    "epochs = 10\noptimizer = 'adam'",  # 4: the same cached objects, bound again
    "if False:\n    val_accuracy = 0.99\nmomentum = 0.9",  # 5: a branch not taken
    "import os, signal\nwarmup = 3\nos.kill(os.getpid(), signal.SIGINT)\n"
    "import time\nfor _ in range(100):\n    time.sleep(0.05)\nval_accuracy = 0.7",  # 6: interrupted
    "def f():\n    global val_accuracy\n    val_accuracy = 0.8\nf()\nval_accuracy",  # 7
    "for i in range(3):\n    val_accuracy = 0.6 + i / 10",  # 8: bound in a loop
]


@pytest.mark.slow
def test_failed_interrupted_and_repeated_cells_record_only_what_they_bound(project: Path) -> None:
    nb = execute_notebook(write_notebook(project / "bound.ipynb", CELLS))
    assert "ZeroDivisionError" in cell_text(nb.cells[2])
    assert "KeyboardInterrupt" in cell_text(nb.cells[6])
    drain(project)
    runs = runs_of_kind(project, "cell", "bound.ipynb")
    by_count = {int(r.data.tags["mlops.execution_count"]): r for r in runs}

    def logged(n: int) -> tuple[dict[str, str], dict[str, float]]:
        run = by_count[n]
        metrics = {k: v for k, v in run.data.metrics.items() if not k.startswith("mlops.")}
        return run.data.params, metrics

    assert logged(2) == ({"epochs": "10", "optimizer": "adam"}, {"val_accuracy": 0.5})
    assert by_count[3].info.status == "FAILED"
    assert logged(3) == ({}, {})
    assert logged(4) == ({"lr": "0.1"}, {})
    assert logged(5) == ({"epochs": "10", "optimizer": "adam"}, {})
    assert logged(6) == ({"momentum": "0.9"}, {})
    assert by_count[7].info.status == "KILLED"
    assert logged(7) == ({"warmup": "3"}, {})
    # bound inside a function (through `global`): the cell's AST binds nothing at top level
    assert logged(8) == ({}, {})
    assert logged(9) == ({}, {"val_accuracy": pytest.approx(0.8)})


def test_definite_bindings_are_the_unconditional_top_level_assignments() -> None:
    source = "a = 1\nb, (c, *d) = 2, (3, 4)\nif x:\n    e = 5\nf += 1\ng: int = 2\nh: int\n"
    assert [(d.name, d.first) for d in definite_bindings(source)] == [
        ("a", 1),
        ("b", 2),
        ("c", 2),
        ("d", 2),
        ("f", 5),
        ("g", 6),
    ]
    assert definite_bindings("not python (") == ()


def test_only_changed_or_executed_names_count() -> None:
    big = list(range(10))
    namespace = {"n": 10, "s": "adam", "obj": big, "gone": 1}
    before = BeforeCell(["n", "s", "obj", "new", "gone"], namespace)
    namespace["new"] = 1
    del namespace["gone"]
    source = "n = 10\nif x:\n    s = 'adam'\n    obj = []\nnew = 1\ngone = 1"
    # finished: the unconditional n counts even though it is the same object
    assert bound_by_cell(
        ["n", "s", "obj", "new", "gone"],
        source,
        before,
        namespace,
        finished=True,
        stopped_at=None,
    ) == ["n", "new"]
    # stopped on line 2: n was bound before it; new only counts because it is new
    assert bound_by_cell(
        ["n", "s", "obj", "new"], source, before, namespace, finished=False, stopped_at=2
    ) == ["n", "new"]
    namespace["obj"] = list(big)  # equal, but another object: rebound
    assert bound_by_cell(["obj"], source, before, namespace, finished=False, stopped_at=None) == [
        "obj"
    ]
