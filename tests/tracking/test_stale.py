"""Stale runs in a real kernel run out of order: a re-run upstream cell with new source
makes its dependents stale, an unchanged re-run does not, and a cell whose dataflow cannot
be read is "dataflow unknown" with its result untouched."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from jupyter_mlops import store
from jupyter_mlops.tracking.queries import notebook_runs
from jupyter_mlops.tracking.stale import FlowRun, compute
from tests.conftest import drain, runs_of_kind, settings_for
from tests.tracking.kernel import notebook_kernel

CELLS = [
    "%load_ext jupyter_mlops",  # 0
    "lr = 0.1",  # 1: a param
    "w = lr * 2",  # 2: reads lr
    "z = w + 1",  # 3: reads w
    "q = 5",  # 4
    "r = q + 1",  # 5: reads q
    'exec("hidden = 1")\nres = 41 + 1\nprint(res)',  # 6: dataflow unknown
    "%mlops stale",  # 7
    "import jupyter_mlops\nprint([s.to_dict() for s in jupyter_mlops.stale()])",  # 8
]


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("stale")
    out: dict[str, Any] = {"root": root, "path": root / "nb.ipynb"}
    with notebook_kernel(root, CELLS) as kernel:
        for i in range(7):
            out[f"first{i}"] = kernel.run(i)
        out["fresh"] = kernel.run(7)
        kernel.run(4)  # q = 5 again: the same source and value
        kernel.run(1, "lr = 0.2")  # new source, new value
        out["stale_magic"] = kernel.run(7)
        out["stale_api"] = kernel.run(8)
    drain(root)
    yield out


def test_a_fresh_notebook_has_no_stale_cells(session: dict[str, Any]) -> None:
    assert "no stale cells" in session["fresh"]


def test_new_source_upstream_makes_dependents_stale_with_the_reason(
    session: dict[str, Any],
) -> None:
    text = session["stale_magic"]
    assert "w = lr * 2" in text
    assert "param lr changed" in text and "`lr = 0.2` was re-run with new source" in text
    assert "z = w + 1" in text and "it read w from stale" in text
    assert "r = q + 1" not in text  # cell 4 was re-run unchanged


def test_stale_returns_plain_data(session: dict[str, Any]) -> None:
    text = session["stale_api"]
    assert "'reason': 'param lr changed" in text and "'cell_id':" in text


def test_dataflow_unknown_leaves_the_cell_alone(session: dict[str, Any]) -> None:
    assert session["first6"].strip() == "42"
    [run] = [
        r
        for r in runs_of_kind(session["root"], "cell")
        if "exec(" in r.data.tags.get("mlops.source", "")
    ]
    assert "exec()" in run.data.tags["mlops.dataflow"]
    assert run.info.status == "FINISHED"


def test_runs_record_reads_writes_and_upstream(session: dict[str, Any]) -> None:
    runs = runs_of_kind(session["root"], "cell")
    by_source = {r.data.tags.get("mlops.source"): r for r in runs}
    w = by_source["w = lr * 2"]
    assert w.data.tags["mlops.reads"] == "lr" and w.data.tags["mlops.writes"] == "w"
    lr_record = by_source["lr = 0.1"].data.tags["mlops.record_id"]
    assert lr_record in w.data.tags["mlops.dataflow"]


def test_the_runs_answer_carries_stale_and_reason(session: dict[str, Any]) -> None:
    settings = settings_for(session["root"])
    runs = runs_of_kind(session["root"], "cell")
    experiment = store.client(settings).get_experiment(runs[0].info.experiment_id).name
    page = notebook_runs(settings, str(session["path"]), experiment, limit=100).to_dict()
    rows = {r["source_preview"]: r for r in page["runs"]}
    assert rows["w = lr * 2"]["stale"] is True
    assert "param lr changed" in rows["w = lr * 2"]["stale_reason"]
    assert rows["r = q + 1"]["stale"] is False and rows["r = q + 1"]["stale_reason"] is None
    unknown = [
        r for r in page["runs"] if "exec(" in r["source_preview"] or "res" in r["source_preview"]
    ]
    assert unknown and unknown[0]["stale"] is None
    assert "dataflow unknown: exec()" in unknown[0]["stale_reason"]


def _run(rid: str, start: int, cell: str, src: str, up=None, w=None, params=()) -> FlowRun:
    return FlowRun(
        rid,
        start,
        cell,
        src,
        str(start),
        upstream=up or {},
        written=w or {},
        params=frozenset(params),
    )


def test_a_param_change_marks_dependents_stale() -> None:
    runs = [
        _run("p1", 1, "c1", "h1", w={"epochs": "v1"}, params=["epochs"]),
        _run("t1", 2, "c2", "h2", up={"p1": {"epochs": "v1"}}, w={"model": "m1"}),
        _run("p2", 3, "c1", "h1", w={"epochs": "v2"}, params=["epochs"]),  # same source, new value
    ]
    states = compute(runs)
    assert states["t1"].stale is True
    assert (
        states["t1"].reason
        == "param epochs changed: cell [3] was re-run and gave a different value"
    )
    assert states["p2"].stale is False


def test_an_unchanged_rerun_is_not_a_change() -> None:
    runs = [
        _run("a1", 1, "c1", "h1", w={"x": "v1"}),
        _run("b1", 2, "c2", "h2", up={"a1": {"x": "v1"}}),
        _run("a2", 3, "c1", "h1", w={"x": "v1"}),
    ]
    assert compute(runs)["b1"].stale is False
