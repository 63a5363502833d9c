"""The files a cell opens: what the audit hook sees, the digest, and in a real kernel the
file inputs on the run, a file changed on disk making its readers stale, and a file one
cell wrote linking the cell that reads it."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from jupyter_mlops import store
from jupyter_mlops.tracking.files import WHOLE_FILE_LIMIT, FileWatch, content_digest, file_version
from jupyter_mlops.tracking.queries import notebook_runs
from tests.conftest import drain, runs_of_kind, settings_for
from tests.tracking.kernel import notebook_kernel


@pytest.fixture
def watch(tmp_path: Path) -> Iterator[FileWatch]:
    (tmp_path / ".mlops").mkdir()
    w = FileWatch(tmp_path, skip=[tmp_path / ".mlops"]).install()
    yield w
    w.uninstall()


def _read(path: Path) -> str:
    with open(path) as fh:
        return fh.read()


def _modes(found: list[dict[str, Any]]) -> dict[str, str]:
    return {f["path"]: f["mode"] for f in found}


def test_the_watch_sees_plain_numpy_and_pandas_opens_inside_the_project(
    watch: FileWatch, tmp_path: Path
) -> None:
    (tmp_path / "in.txt").write_text("hello")
    np.save(tmp_path / "arr.npy", np.arange(4))
    pd.DataFrame({"a": [1, 2]}).to_csv(tmp_path / "t.csv", index=False)
    outside = tmp_path.parent / f"{tmp_path.name}-outside.txt"
    outside.write_text("x")
    (tmp_path / ".mlops" / "state.json").write_text("{}")
    (tmp_path / "mod.py").write_text("")
    watch.start()
    assert _read(tmp_path / "in.txt") == "hello"
    np.load(tmp_path / "arr.npy")
    pd.read_csv(tmp_path / "t.csv")
    with open(tmp_path / "out.bin", "wb") as fh:
        fh.write(b"1")
    with open(tmp_path / "in.txt", "a") as fh:  # read before, appended now
        fh.write("!")
    os.close(os.open(tmp_path / "raw.dat", os.O_WRONLY | os.O_CREAT))
    _read(outside)
    _read(tmp_path / ".mlops" / "state.json")
    _read(tmp_path / "mod.py")
    found = watch.stop()
    assert _modes(found) == {
        "in.txt": "rw",
        "arr.npy": "r",
        "t.csv": "r",
        "out.bin": "w",
        "raw.dat": "w",
    }
    by_path = {f["path"]: f for f in found}
    assert by_path["out.bin"]["version"] == file_version(tmp_path / "out.bin")
    assert by_path["out.bin"]["version"].startswith("1:")


def test_the_watch_ignores_other_threads_and_runs_only_between_start_and_stop(
    watch: FileWatch, tmp_path: Path
) -> None:
    (tmp_path / "a.txt").write_text("a")
    _read(tmp_path / "a.txt")  # before start
    watch.start()
    t = threading.Thread(target=lambda: _read(tmp_path / "a.txt"))
    t.start()
    t.join()
    assert watch.stop() == []
    _read(tmp_path / "a.txt")  # after stop
    watch.start()
    assert watch.stop() == []


def test_a_file_gone_by_the_end_of_the_cell_has_no_version(
    watch: FileWatch, tmp_path: Path
) -> None:
    path = tmp_path / "tmp.txt"
    watch.start()
    path.write_text("x")
    path.unlink()
    assert watch.stop() == [{"path": "tmp.txt", "mode": "w"}]


def test_a_small_file_digest_is_its_sha256_and_a_large_one_samples_blocks(
    tmp_path: Path,
) -> None:
    small = tmp_path / "small.bin"
    small.write_bytes(b"abc" * 1000)
    assert content_digest(small) == hashlib.sha256(b"abc" * 1000).hexdigest()
    big = tmp_path / "big.bin"
    size = WHOLE_FILE_LIMIT * 3
    with open(big, "wb") as fh:
        fh.truncate(size)
    before = content_digest(big)
    with open(big, "r+b") as fh:  # the last block is always sampled
        fh.seek(size - 10)
        fh.write(b"changed")
    assert content_digest(big) != before
    assert content_digest(tmp_path / "missing.bin") is None


CELLS = [
    "%load_ext jupyter_mlops",  # 0
    "import pandas as pd\ndf = pd.read_csv('data.csv')",  # 1: reads a file from outside
    "n = len(df)",  # 2
    "with open('out.txt', 'w') as fh:\n    fh.write(str(n))",  # 3: writes a file
    "text = open('out.txt').read()",  # 4: reads it: its upstream is cell 3
    "extra = open('extra.txt').read()",  # 5: a file then deleted
    "%mlops flush",  # 6
    "%mlops stale",  # 7
    "import jupyter_mlops\nprint(jupyter_mlops.lineage('n'))",  # 8
]


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("files")
    data = "a,b\n1,2\n3,4\n"
    (root / "data.csv").write_text(data)
    (root / "extra.txt").write_text("extra")
    out: dict[str, Any] = {"root": root, "data": data}
    with notebook_kernel(root, CELLS) as kernel:
        for i in range(7):
            out[f"first{i}"] = kernel.run(i)
        out["fresh"] = kernel.run(7)
        out["lineage"] = kernel.run(8)
        (root / "data.csv").write_text(data + "5,6\n")  # changed outside the notebook
        (root / "extra.txt").unlink()
        kernel.run(3, "with open('out.txt', 'w') as fh:\n    fh.write(str(n + 1))")
        out["stale"] = kernel.run(7)
    drain(root)
    yield out


def test_a_read_file_is_a_dataset_input_with_its_digest(session: dict[str, Any]) -> None:
    runs = runs_of_kind(session["root"], "cell")
    [read] = [r for r in runs if "read_csv" in r.data.tags.get("mlops.source", "")]
    [entry] = json.loads(read.data.tags["mlops.files"])
    digest = hashlib.sha256(session["data"].encode()).hexdigest()
    assert entry["path"] == "data.csv" and entry["mode"] == "r"
    assert entry["digest"] == digest
    # the frame it bound is a dataset input too
    assert {i.dataset.name for i in read.inputs.dataset_inputs} == {"data.csv", "df"}
    [inp] = [i for i in read.inputs.dataset_inputs if i.dataset.name == "data.csv"]
    assert inp.dataset.source_type == "local"
    assert inp.dataset.digest == digest[:36]
    [wrote] = [r for r in runs if "fh.write(str(n))" in r.data.tags.get("mlops.source", "")]
    assert json.loads(wrote.data.tags["mlops.files"])[0]["mode"] == "w"
    assert not wrote.inputs.dataset_inputs
    assert "file:data.csv" in read.data.tags["mlops.reads"]


def test_a_cell_reading_a_file_another_cell_wrote_reads_from_it(
    session: dict[str, Any],
) -> None:
    runs = runs_of_kind(session["root"], "cell")
    by_source = {r.data.tags.get("mlops.source"): r for r in runs}
    writer = by_source["with open('out.txt', 'w') as fh:\n    fh.write(str(n))"]
    reader = by_source["text = open('out.txt').read()"]
    upstream = json.loads(reader.data.tags["mlops.dataflow"])["u"]
    assert "file:out.txt" in upstream[writer.data.tags["mlops.record_id"]]


def test_nothing_is_stale_until_a_file_changes_then_its_readers_are(
    session: dict[str, Any],
) -> None:
    assert "no stale cells" in session["fresh"]
    text = session["stale"]
    assert "file data.csv changed since it was read" in text
    assert "n = len(df)" in text and "it read df from stale" in text
    assert "file extra.txt is gone" in text
    assert "file out.txt changed" in text and "re-run with new source" in text


def test_lineage_names_the_files_read(session: dict[str, Any]) -> None:
    assert "'files': [{'path': 'data.csv'" in session["lineage"]
    assert "'files_read': ['data.csv']" in session["lineage"]


def test_the_runs_answer_marks_file_staleness(session: dict[str, Any]) -> None:
    root = session["root"]
    settings = settings_for(root)
    runs = runs_of_kind(root, "cell")
    experiment = store.client(settings).get_experiment(runs[0].info.experiment_id).name
    page = notebook_runs(settings, str(root / "nb.ipynb"), experiment, limit=100).to_dict()
    rows = {r["source_preview"]: r for r in page["runs"]}
    read = next(r for p, r in rows.items() if "read_csv" in p)
    assert read["stale"] is True
    assert read["stale_reason"] == "file data.csv changed since it was read"


def test_tracking_files_off_records_none(tmp_path: Path) -> None:
    (tmp_path / "data.txt").write_text("x")
    with notebook_kernel(tmp_path, ["%load_ext jupyter_mlops", "t = open('data.txt').read()"]) as k:
        (tmp_path / "mlops.yaml").write_text("tracking:\n  files: false\n")
        k.run(0)
        k.run(1)
    drain(tmp_path)
    [run] = [r for r in runs_of_kind(tmp_path, "cell") if "open(" in r.data.tags["mlops.source"]]
    assert "mlops.files" not in run.data.tags
