"""Lineage and slicing on a messy notebook run out of order with dead cells: the slice holds
only the cells a value came from, in the order they ran, and papermill reproduces the value."""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import papermill
import pytest

from jupyter_mlops.pipelines.outputs import read_outputs
from tests.tracking.kernel import notebook_kernel

CELLS = [
    "%load_ext jupyter_mlops",  # 0
    "import numpy as np",  # 1
    "lr = 0.5",  # 2: a param, run first as 0.9
    "data = np.arange(10.0)",  # 3
    "junk = data * 100",  # 4: dead for result
    "scaled = data * lr",  # 5
    "result = float(scaled.sum()) + offset",  # 6: reads offset, defined below it
    "offset = 1.0",  # 7
    "print(junk)",  # 8: dead
    "%mlops slice result sliced",  # 9
    "%mlops lineage result",  # 10
    "import jupyter_mlops\nprint(json.dumps(jupyter_mlops.lineage('result')))",  # 11
    "%mlops slice scaled arrays",  # 12
    "print(jupyter_mlops.value_digest(scaled))",  # 13
    "%mlops slice nope sliced_nope",  # 14
    "%mlops slice result sliced",  # 15: exists already
]


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("slice")
    out: dict[str, Any] = {"root": root}
    with notebook_kernel(root, CELLS) as kernel:
        for i in (0, 1, 3):
            kernel.run(i)
        kernel.run(2, "lr = 0.9")
        for i in (7, 4, 5, 6, 8):
            kernel.run(i)
        kernel.run(2, "lr = 0.5")  # after result: its lineage still holds lr = 0.9
        kernel.run(3)  # the same data again
        out["slice"] = kernel.run(9)
        out["lineage"] = kernel.run(10)
        out["lineage_outputs"] = kernel.nb.cells[10].outputs
        kernel.run(1, "import json")  # rebinds nothing the lineage used
        kernel.run(1, "import numpy as np\nimport json")
        out["data"] = json.loads(kernel.run(11))
        out["slice_array"] = kernel.run(12)
        out["digest"] = kernel.run(13).strip()
        out["nope"] = kernel.run(14)
        out["again"] = kernel.run(15)
    yield out


def _code(path: Path) -> list[str]:
    return [c.source for c in nbformat.read(path, as_version=4).cells]


def test_the_slice_holds_only_the_lineage_in_run_order(session: dict[str, Any]) -> None:
    assert "wrote templates/sliced.ipynb" in session["slice"], session["slice"]
    nb = nbformat.read(session["root"] / "templates" / "sliced.ipynb", as_version=4)
    assert nb.cells[0].metadata["tags"] == ["parameters"]
    params = ast.literal_eval(
        "{"
        + nb.cells[0]
        .source.replace(" = ", ": ")
        .replace("\n", ",")
        .replace("lr", "'lr'")
        .replace("offset", "'offset'")
        + "}"
    )
    assert params == {"lr": 0.9, "offset": 1.0}
    assert [c.source for c in nb.cells[1:-1]] == [
        "import numpy as np",
        "data = np.arange(10.0)",
        "scaled = data * lr",
        "result = float(scaled.sum()) + offset",
    ]
    assert "jupyter_mlops.output('result', result)" in nb.cells[-1].source


def test_papermill_reproduces_the_value_and_takes_new_params(
    session: dict[str, Any], tmp_path: Path
) -> None:
    template = session["root"] / "templates" / "sliced.ipynb"
    same = papermill.execute_notebook(
        str(template),
        str(tmp_path / "same.ipynb"),
        kernel_name="python3",
        progress_bar=False,
        cwd=str(session["root"]),
    )
    assert read_outputs(same)["result"] == pytest.approx(0.9 * 45 + 1)
    other = papermill.execute_notebook(
        str(template),
        str(tmp_path / "other.ipynb"),
        parameters={"lr": 0.1},
        kernel_name="python3",
        progress_bar=False,
        cwd=str(session["root"]),
    )
    assert read_outputs(other)["result"] == pytest.approx(0.1 * 45 + 1)


def test_a_value_that_is_not_json_is_reproduced_by_its_digest(
    session: dict[str, Any], tmp_path: Path
) -> None:
    assert "wrote templates/arrays.ipynb" in session["slice_array"]
    template = session["root"] / "templates" / "arrays.ipynb"
    assert "result" not in "".join(_code(template))
    ran = papermill.execute_notebook(
        str(template),
        str(tmp_path / "arrays.ipynb"),
        kernel_name="python3",
        progress_bar=False,
        cwd=str(session["root"]),
    )
    assert session["digest"].startswith("sha256:")
    assert read_outputs(ran)["scaled_digest"] == session["digest"]


def test_lineage_is_plain_data_with_the_chain_and_its_params(session: dict[str, Any]) -> None:
    data = session["data"]
    assert data["target"] == "result"
    assert [c["source"] for c in data["cells"]] == [
        "import numpy as np",
        "data = np.arange(10.0)",
        "lr = 0.9",
        "offset = 1.0",
        "scaled = data * lr",
        "result = float(scaled.sum()) + offset",
    ]
    assert data["params"] == ["lr", "offset"]
    ids = {c["source"]: c["record_id"] for c in data["cells"]}
    edges = {(e["from"], e["to"]): e["names"] for e in data["edges"]}
    assert edges[(ids["lr = 0.9"], ids["scaled = data * lr"])] == ["lr"]
    assert edges[(ids["scaled = data * lr"], ids["result = float(scaled.sum()) + offset"])] == [
        "scaled"
    ]
    # lr was set again after result was computed: result's lineage is stale now
    assert data["cells"][-1]["stale"] is True
    assert data["cells"][0]["stale"] is False


def test_the_lineage_magic_shows_a_graph_and_the_chain(session: dict[str, Any]) -> None:
    text = session["lineage"]
    assert "result comes from 6 cell run(s)" in text
    assert "param lr" in text and "junk" not in text
    mimes = {m for o in session["lineage_outputs"] for m in (o.get("data") or {})}
    assert "application/vnd.plotly.v1+json" in mimes


def test_bad_inputs_say_what_is_wrong(session: dict[str, Any]) -> None:
    assert "no tracked cell wrote 'nope' in this session" in session["nope"]
    assert "Traceback" not in session["nope"]
    assert "templates/sliced.ipynb exists; pass --force to replace it" in session["again"]
