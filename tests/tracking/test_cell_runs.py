"""One real notebook in a real kernel against a real SQLite store: what each cell leaves."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from jupyter_mlops import store
from tests.conftest import (
    cell_text,
    drain,
    execute_notebook,
    runs_of_kind,
    settings_for,
    write_notebook,
)

CELLS = [
    "%load_ext jupyter_mlops",  # 0
    'lr = 0.01\nepochs = 3\nname = "baseline"\nuse_bn = True\n_private = 5\nlong_text = "x" * 2000',
    'val_loss = 0.5\naccuracy = 0.9\nnan_loss = float("nan")\nfor epoch in range(2):\n    pass',
    "val_loss = 0.4",  # 3
    'import pandas as pd\ndf = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})',  # 4
    'raise ValueError("boom")',  # 5
    "%%mlops skip\nskipped_var = 1",  # 6
    "import jupyter_mlops\nfor i in range(3):\n"
    "    jupyter_mlops.log_metrics(train_loss=1.0 / (i + 1))\n"
    'jupyter_mlops.log_params(optimizer="adam")\njupyter_mlops.log_metrics(bad="text")',  # 7
    "# " + "x" * 6000 + "\ny = 1",  # 8
    "%mlops off",  # 9
    "untracked = 1",  # 10
    "%mlops on",  # 11
    "class Weird:\n    pass\n\nobj = Weird()\nz = 3\n\ndef f():\n    inner = 1",  # 12
    "%mlops bogus",  # 13
    "%mlops log k",  # 14
    "%mlops log f1=0.8 note=hello",  # 15
    "%mlops tag team=vision",  # 16
    "%%mlops nope\nq = 1",  # 17
]


@pytest.fixture(scope="module")
def tracked(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    import os

    root = tmp_path_factory.mktemp("cells")
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
        nb = execute_notebook(path)
        drain(root)
        sessions = runs_of_kind(root, "session")
        cells = runs_of_kind(root, "cell")
        yield {"root": root, "nb": nb, "sessions": sessions, "cells": cells}
    finally:
        os.chdir(saved)
        os.environ.update(env_saved)
        store.forget_clients()


def by_count(tracked: dict[str, Any]) -> dict[int, Any]:
    """Cell runs keyed by the notebook cell index (execution count - 1 here)."""
    out = {}
    for run in tracked["cells"]:
        out[int(run.data.tags["mlops.execution_count"]) - 1] = run
    return out


def test_one_session_run_closed_with_notebook_and_environment(tracked: dict[str, Any]) -> None:
    [session] = tracked["sessions"]
    tags = session.data.tags
    assert session.info.status == "FINISHED"
    assert tags["mlflow.source.type"] == "NOTEBOOK"
    assert tags["mlflow.source.name"] == "nb.ipynb"
    assert tags["mlops.python"].count(".") == 2
    assert "mlops.version.mlflow" in tags
    assert tags["team"] == "vision"  # from %mlops tag
    client = store.client(settings_for(tracked["root"]))
    assert [a.path for a in client.list_artifacts(session.info.run_id)] == ["nb.ipynb"]
    exp = client.get_experiment(session.info.experiment_id)
    assert exp.name == "nb.ipynb"
    assert exp.artifact_location.startswith((tracked["root"] / ".mlops" / "artifacts").as_uri())


def test_every_executed_cell_is_a_child_run_except_skipped_and_off(tracked: dict[str, Any]) -> None:
    [session] = tracked["sessions"]
    runs = by_count(tracked)
    # 0 loads the extension, 6 is %%mlops skip, 10 runs while off, 11 starts while off
    assert sorted(runs) == [1, 2, 3, 4, 5, 7, 8, 9, 12, 13, 14, 15, 16, 17]
    for run in runs.values():
        assert run.data.tags["mlflow.parentRunId"] == session.info.run_id
        assert run.data.tags["mlops.kind"] == "cell"
        assert run.data.metrics["mlops.duration_s"] >= 0
        assert len(run.data.tags["mlops.source_hash"]) == 40
    assert not any("skipped_var" in r.data.tags.get("mlops.source", "") for r in runs.values())
    assert not any("untracked" in r.data.tags.get("mlops.source", "") for r in runs.values())


def test_params_are_top_level_scalars_with_notes_for_what_was_skipped(
    tracked: dict[str, Any],
) -> None:
    run = by_count(tracked)[1]
    assert run.data.params == {
        "lr": "0.01",
        "epochs": "3",
        "name": "baseline",
        "use_bn": "True",
    }
    skipped = json.loads(run.data.tags["mlops.skipped"])
    assert skipped["long_text"].startswith("string of 2000 characters")
    assert run.data.tags["mlops.source_preview"] == "lr = 0.01"
    assert run.data.tags["mlops.source"].startswith("lr = 0.01\nepochs = 3")


def test_metrics_by_name_with_steps_across_cells(tracked: dict[str, Any]) -> None:
    runs = by_count(tracked)
    client = store.client(settings_for(tracked["root"]))
    assert runs[2].data.metrics["val_loss"] == 0.5
    assert runs[2].data.metrics["accuracy"] == 0.9
    assert "epoch" not in runs[2].data.params  # loop counters are not settings
    assert "nan_loss" in json.loads(runs[2].data.tags["mlops.skipped"])
    [second] = client.get_metric_history(runs[3].info.run_id, "val_loss")
    assert (second.value, second.step) == (0.4, 1)
    [session] = tracked["sessions"]
    history = client.get_metric_history(session.info.run_id, "val_loss")
    assert sorted((m.step, m.value) for m in history) == [(0, 0.5), (1, 0.4)]


def test_explicit_logging_and_bad_values(tracked: dict[str, Any]) -> None:
    run = by_count(tracked)[7]
    client = store.client(settings_for(tracked["root"]))
    history = client.get_metric_history(run.info.run_id, "train_loss")
    assert [(m.step, round(m.value, 3)) for m in sorted(history, key=lambda m: m.step)] == [
        (0, 1.0),
        (1, 0.5),
        (2, 0.333),
    ]
    assert run.data.params["optimizer"] == "adam"
    assert json.loads(run.data.tags["mlops.skipped"])["bad"] == "not a number (str)"
    assert run.info.status == "FINISHED"


def test_dataframe_is_an_mlflow_dataset_input(tracked: dict[str, Any]) -> None:
    run = by_count(tracked)[4]
    [dataset_input] = run.inputs.dataset_inputs
    dataset = dataset_input.dataset
    assert dataset.name == "df"
    assert len(dataset.digest) == 8
    schema = json.loads(dataset.schema)["mlflow_colspec"]
    assert [(c["name"], c["type"]) for c in schema] == [("a", "long"), ("b", "string")]
    assert json.loads(dataset.profile)["num_rows"] == 3


def test_failed_cell_is_failed_with_its_error(tracked: dict[str, Any]) -> None:
    run = by_count(tracked)[5]
    assert run.info.status == "FAILED"
    assert run.data.tags["mlops.error_type"] == "ValueError"
    assert run.data.tags["mlops.error_message"] == "boom"


def test_long_source_goes_to_an_artifact(tracked: dict[str, Any]) -> None:
    run = by_count(tracked)[8]
    assert "mlops.source" not in run.data.tags
    client = store.client(settings_for(tracked["root"]))
    local = client.download_artifacts(run.info.run_id, "cell_source.py", str(tracked["root"]))
    assert Path(local).read_text().endswith("\ny = 1")


def test_objects_and_function_locals_are_not_params(tracked: dict[str, Any]) -> None:
    run = by_count(tracked)[12]
    assert run.data.params == {"z": "3"}


def test_magic_mistakes_print_usage_and_do_not_fail_the_cell(tracked: dict[str, Any]) -> None:
    cells = tracked["nb"].cells
    assert "invalid choice: 'bogus'" in cell_text(cells[13])
    assert "usage: %mlops" in cell_text(cells[13])
    assert "expected k=v, got 'k'" in cell_text(cells[14])
    assert "unknown cell command 'nope'" in cell_text(cells[17])
    runs = by_count(tracked)
    for index in (13, 14, 17):
        assert runs[index].info.status == "FINISHED"
        assert "Traceback" not in cell_text(cells[index])
    assert runs[15].data.metrics["f1"] == 0.8
    assert runs[15].data.params["note"] == "hello"


def test_only_the_failing_cell_has_an_error(tracked: dict[str, Any]) -> None:
    errors = [
        i
        for i, c in enumerate(tracked["nb"].cells)
        if any(o["output_type"] == "error" for o in c.get("outputs", []))
    ]
    assert errors == [5]
    assert "tracking every cell of 'nb.ipynb'" in cell_text(tracked["nb"].cells[0])


def test_journal_is_removed_once_written(tracked: dict[str, Any]) -> None:
    assert list((tracked["root"] / ".mlops" / "journal").glob("*.jsonl")) == []
