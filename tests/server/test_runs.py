"""GET runs and runs/ID against a real store fed through real journals and a real kernel."""

from __future__ import annotations

from pathlib import Path

import pytest

from jupyter_mlops.config import Settings
from tests.conftest import drain, execute_notebook, write_notebook

from .conftest import Api, Session

LONG = "# a long cell\n" + "\n".join(f"x{i} = {i}" for i in range(800))


@pytest.fixture(scope="module")
def history(served: Settings) -> dict[str, str]:
    """Five drained cell runs of ``nb/train.ipynb``: record ids by name."""
    (served.project_dir / "nb").mkdir()
    session = Session(served, "nb/train.ipynb")
    ids = {
        "lr": session.cell("lr = 0.1", params={"lr": 0.1}),
        "epochs": session.cell("epochs = 3", params={"epochs": 3}),
        "train": session.cell("val_loss = 0.25", metrics={"val_loss": 0.25}),
        "fail": session.cell("1 / 0", error={"type": "ZeroDivisionError", "message": "oops"}),
        "long": session.cell(LONG),
    }
    session.end()
    drain(served.project_dir)
    return ids


async def test_first_page_then_every_page_newest_first(api: Api, history: dict[str, str]) -> None:
    response, page = await api("GET", "runs", params={"notebook": "nb/train.ipynb", "limit": 2})
    assert response.code == 200
    assert page["experiment"] == "nb/train.ipynb" and page["experiment_id"]
    assert [r["execution_count"] for r in page["runs"]] == ["5", "4"]
    assert page["pending"] == [] and page["sessions"] == []
    failed = page["runs"][1]
    assert failed["status"] == "FAILED" and failed["error"] == "ZeroDivisionError: oops"
    assert failed["record_id"] == history["fail"] and failed["pending"] is False

    seen = [r["execution_count"] for r in page["runs"]]
    sessions = []
    token = page["next_page_token"]
    while token:
        _, page = await api(
            "GET", "runs", params={"notebook": "nb/train.ipynb", "limit": 2, "page_token": token}
        )
        assert page["pending"] == []
        seen += [r["execution_count"] for r in page["runs"]]
        sessions += page["sessions"]
        token = page["next_page_token"]
    assert seen == ["5", "4", "3", "2", "1"]
    # the session started before its cells: it comes with the last of them
    [session] = sessions
    assert session["status"] == "FINISHED" and failed["session_run_id"] == session["run_id"]
    _, page = await api("GET", "runs", params={"notebook": "nb/train.ipynb"})
    assert [s["run_id"] for s in page["sessions"]] == [session["run_id"]]
    by_count = {r["execution_count"]: r for r in page["runs"]}
    assert by_count["1"]["params"] == {"lr": "0.1"}
    assert by_count["3"]["metrics"] == {"val_loss": 0.25}
    assert by_count["3"]["duration_s"] is not None


async def test_run_details_carry_the_full_source(api: Api, history: dict[str, str]) -> None:
    _, page = await api("GET", "runs", params={"notebook": "nb/train.ipynb"})
    run_id = {r["record_id"]: r["run_id"] for r in page["runs"]}
    response, long = await api("GET", f"runs/{run_id[history['long']]}")
    assert response.code == 200
    assert long["source"] == LONG  # longer than the tag limit: read from its artifact
    assert long["kind"] == "cell" and "cell_source.py" in long["artifacts"]
    assert long["source_preview"] == "x0 = 0"  # the first statement, not the comment
    _, short = await api("GET", f"runs/{run_id[history['lr']]}")
    assert short["source"] == "lr = 0.1" and short["params"] == {"lr": "0.1"}
    assert "mlops.source" not in short["tags"] and short["tags"]["mlops.kind"] == "cell"

    response, error = await api("GET", "runs/0123456789abcdef0123456789abcdef")
    assert response.code == 404 and error["error"] == "NotFoundError"
    assert "no run '0123456789abcdef0123456789abcdef'" in error["message"]


async def test_records_not_yet_drained_show_at_once_as_pending(api: Api, served: Settings) -> None:
    session = Session(served, "live.ipynb")
    first = session.cell("a = 1", params={"a": 1})
    response, page = await api("GET", "runs", params={"notebook": "live.ipynb"})
    assert response.code == 200 and page["runs"] == [] and page["experiment_id"] is None
    [row] = page["pending"]
    assert row["pending"] is True and row["run_id"] == "" and row["record_id"] == first
    assert row["params"] == {"a": "1"} and row["execution_count"] == "1"
    etag = response.headers["ETag"]

    # nothing changed: 304, without a body
    response, body = await api(
        "GET", "runs", params={"notebook": "live.ipynb"}, headers={"If-None-Match": etag}
    )
    assert response.code == 304 and body is None

    second = session.cell("loss = 0.5", metrics={"loss": 0.5})
    response, page = await api(
        "GET", "runs", params={"notebook": "live.ipynb"}, headers={"If-None-Match": etag}
    )
    assert response.code == 200 and response.headers["ETag"] != etag
    assert [p["record_id"] for p in page["pending"]] == [second, first]
    assert page["pending"][0]["metrics"] == {"loss": 0.5}

    session.end()
    drain(served.project_dir)
    _, page = await api("GET", "runs", params={"notebook": "live.ipynb"})
    assert page["pending"] == []
    assert [r["record_id"] for r in page["runs"]] == [second, first]
    assert all(r["run_id"] for r in page["runs"])


@pytest.fixture(scope="module")
def kernel_notebook(served: Settings) -> Path:
    """A notebook really run in a kernel with tracking on, drained."""
    folder = served.project_dir / "work"
    folder.mkdir()
    path = write_notebook(
        folder / "real.ipynb",
        ["%load_ext jupyter_mlops", "batch_size = 32", "test_accuracy = 0.93"],
    )
    execute_notebook(path)
    drain(served.project_dir)
    return path


@pytest.mark.slow
async def test_a_real_kernels_cells_under_the_lab_path(api: Api, kernel_notebook: Path) -> None:
    _, page = await api("GET", "runs", params={"notebook": "work/real.ipynb"})
    rows = {r["execution_count"]: r for r in page["runs"]}
    assert rows["2"]["params"] == {"batch_size": "32"}
    assert rows["3"]["metrics"] == {"test_accuracy": 0.93}
    assert page["sessions"][0]["status"] == "FINISHED"
    # a leading slash, as some front ends send, names the same notebook
    _, again = await api("GET", "runs", params={"notebook": "/work/real.ipynb"})
    assert [r["run_id"] for r in again["runs"]] == [r["run_id"] for r in page["runs"]]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "missing query parameter 'notebook'"),
        ({"notebook": "  "}, "notebook: an empty path"),
        ({"notebook": "../other/secret.ipynb"}, "outside the served root"),
        ({"notebook": "nb/../../x.ipynb"}, "outside the served root"),
        ({"notebook": "a.ipynb", "limit": "ten"}, "limit must be an integer, got 'ten'"),
        ({"notebook": "a.ipynb", "limit": "0"}, "limit must be between 1 and 1000, got 0"),
        ({"notebook": "a.ipynb", "limit": "5000"}, "limit must be between 1 and 1000"),
    ],
)
async def test_bad_queries_are_400_with_a_message(
    api: Api, served: Settings, params: dict[str, str], message: str
) -> None:
    response, error = await api("GET", "runs", params=params)
    assert response.code == 400, error
    assert error["error"] == "BadRequest" and message in error["message"]


async def test_a_bad_page_token_is_400(api: Api, history: dict[str, str]) -> None:
    response, error = await api(
        "GET", "runs", params={"notebook": "nb/train.ipynb", "page_token": "not-a-token"}
    )
    assert response.code == 400, error
    assert error["error"] == "MlopsError" and "token" in error["message"].lower()


async def test_an_untracked_notebook_is_an_empty_page(api: Api, served: Settings) -> None:
    response, page = await api("GET", "runs", params={"notebook": "never/run.ipynb"})
    assert response.code == 200
    assert page == {
        "notebook": "never/run.ipynb",
        "experiment": "never/run.ipynb",
        "experiment_id": None,
        "runs": [],
        "next_page_token": None,
        "sessions": [],
        "pending": [],
        "tracking": False,
    }


async def _run_ids(api: Api) -> dict[str, str]:
    """Run ids of the history's cells, by their source."""
    response, page = await api("GET", "runs", params={"notebook": "nb/train.ipynb"})
    assert response.code == 200
    return {r["source_preview"]: r["run_id"] for r in page["runs"]}


async def test_runs_compare_side_by_side(api: Api, history: dict[str, str]) -> None:
    ids = await _run_ids(api)
    chosen = [ids["lr = 0.1"], ids["epochs = 3"], ids["val_loss = 0.25"]]
    pairs = [("run", i) for i in chosen + chosen[:1]]  # a repeat counts once
    response, found = await api("GET", "compare", params=pairs)
    assert response.code == 200, found
    assert [r["run_id"] for r in found["runs"]] == chosen
    assert found["params"] == {"epochs": [None, "3", None], "lr": ["0.1", None, None]}
    assert found["metrics"] == {"val_loss": [None, None, 0.25]}
    assert found["differing_params"] == ["epochs", "lr"]
    assert [r["kind"] for r in found["runs"]] == ["cell"] * 3


async def test_bad_comparisons_are_refused_with_a_message(
    api: Api, history: dict[str, str]
) -> None:
    one = (await _run_ids(api))["lr = 0.1"]
    cases = [
        ([], "compare 2 to 20 runs, each as ?run=<run id>; got 0"),
        ([one], "got 1"),
        ([one, one], "got 1"),
        ([f"{i:032x}" for i in range(22)], "got 22"),
        ([one, "../etc"], "not a run id: '../etc' (32 hex digits)"),
    ]
    for runs, message in cases:
        response, error = await api("GET", "compare", params=[("run", r) for r in runs])
        assert response.code == 400, (runs, error)
        assert message in error["message"], (runs, error)
    response, error = await api("GET", "compare", params=[("run", one), ("run", "0" * 32)])
    assert response.code == 404 and f"no run {'0' * 32!r}" in error["message"]


async def test_no_compare_query_gets_a_5xx(api: Api, history: dict[str, str]) -> None:
    from hypothesis import strategies as st

    from .test_fuzz_rest import _generate

    one = (await _run_ids(api))["lr = 0.1"]
    values = st.text(st.characters(blacklist_categories=["Cs"]), max_size=40) | st.just(one)
    for runs in _generate(st.lists(values, max_size=25)):
        response, error = await api("GET", "compare", params=[("run", v) for v in runs])
        assert response.code < 500, (runs, error)
        if response.code >= 400:
            assert error["message"], (runs, error)
