"""Reproducing runs for real: a pipeline run again in place and, after the code moved on, in
a worktree of its commit; a step that is not deterministic fails the CLI; the chain of
cells behind a cell run; and each bad input with its message."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jupyter_mlops import store
from jupyter_mlops.config import load_settings
from jupyter_mlops.exceptions import NotFoundError, UsageError
from jupyter_mlops.pipelines.reproduce import compare, reproduce
from jupyter_mlops.pipelines.runner import run_pipeline
from tests.conftest import (
    ENV_KEYS,
    TEAM_SERVER,
    cell_text,
    drain,
    execute_notebook,
    write_notebook,
)
from tests.pipelines.helpers import pipeline_file, step_notebook


def _git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=root,
        check=True,
        capture_output=True,
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("reproduce") / "project"
    root.mkdir()
    (root / "mlops.yaml").write_text("")
    (root / ".gitignore").write_text(".mlops/\nexecuted/\n")
    (root / "factor.txt").write_text("3")
    step_notebook(
        root / "train.ipynb",
        "x = 1\nnoisy = False",
        "import random\nfactor = float(open('factor.txt').read())\n"
        "score = x * factor + (random.random() if noisy else 0.0)",
        'import jupyter_mlops\njupyter_mlops.output("score", score)',
    )
    pipeline_file(
        root / "pipeline.yaml",
        {
            "name": "repro",
            "params": {"x": 2, "noisy": False},
            "steps": {
                "train": {
                    "notebook": "train.ipynb",
                    "params": {"x": "${params.x}", "noisy": "${params.noisy}"},
                    "outputs": ["score"],
                }
            },
        },
    )
    with pytest.MonkeyPatch.context() as mp:
        for key in ENV_KEYS:
            mp.delenv(key, raising=False)
        if TEAM_SERVER:
            mp.setenv("MLFLOW_TRACKING_URI", TEAM_SERVER)
            mp.setenv("MLFLOW_REGISTRY_URI", TEAM_SERVER)
        mp.chdir(root)
        _git(root, "init", "-q")
        _git(root, "add", "-A")
        _git(root, "commit", "-q", "-m", "first")
        settings = load_settings(root)
        first = run_pipeline(root / "pipeline.yaml", {"x": "5"}, settings=settings, progress=False)
        try:
            yield {"root": root, "settings": settings, "first": first.run_id}
        finally:
            store.forget_clients()


def test_a_pipeline_run_reproduces_in_place_with_its_params(project: dict[str, Any]) -> None:
    settings = project["settings"]
    found = reproduce(project["first"], settings=settings)
    assert found.where.startswith("in place at commit")
    assert found.same, found.summary()
    assert [(d.name, d.original, d.reproduced) for d in found.diffs] == [
        ("train.score", 15.0, 15.0)
    ]
    new = store.client(settings).get_run(found.new_run_id)
    assert new.data.tags["mlops.reproduces"] == project["first"]
    assert json.loads(new.data.tags["mlops.pipeline_params"])["x"] == 5
    assert "every metric matches" in found.summary()


def test_after_the_code_moved_on_it_runs_the_recorded_commit_in_a_worktree(
    project: dict[str, Any],
) -> None:
    root, settings = project["root"], project["settings"]
    (root / "factor.txt").write_text("4")
    _git(root, "commit", "-q", "-am", "a new factor")
    found = reproduce(project["first"], settings=settings)
    assert found.where.startswith("in a temporary worktree of commit")
    assert found.same, found.summary()  # 5 * 3, not 5 * 4
    assert not [p for p in Path("/tmp").glob("mlops-worktree-*") if (p / "tree").exists()]
    listed = subprocess.run(["git", "worktree", "list"], cwd=root, capture_output=True, text=True)
    assert len(listed.stdout.strip().splitlines()) == 1


def test_a_dirty_tree_is_refused_with_the_files(project: dict[str, Any]) -> None:
    root = project["root"]
    before = (root / "factor.txt").read_text()
    (root / "factor.txt").write_text("9")
    try:
        with pytest.raises(
            UsageError, match=r"uncommitted changes \(factor.txt\); commit or stash"
        ):
            reproduce(project["first"], settings=project["settings"])
    finally:
        (root / "factor.txt").write_text(before)


def test_a_commit_that_no_longer_exists_and_a_run_without_source(
    project: dict[str, Any],
) -> None:
    settings = project["settings"]
    client = store.client(settings)
    other = run_pipeline(project["root"] / "pipeline.yaml", settings=settings, progress=False)
    client.set_tag(other.run_id, "mlflow.source.git.commit", "0123456789abcdef" * 2 + "01234567")
    with pytest.raises(UsageError, match="commit 0123456789ab, which no longer exists"):
        reproduce(other.run_id, settings=settings)
    client.delete_tag(other.run_id, "mlops.pipeline_file")
    with pytest.raises(UsageError, match="has no recorded pipeline file"):
        reproduce(other.run_id, settings=settings)
    with pytest.raises(NotFoundError, match="no run 'nosuchrun'"):
        reproduce("nosuchrun", settings=settings)
    with pytest.raises(UsageError, match="--tolerance must be a number >= 0"):
        reproduce(other.run_id, tolerance=-1, settings=settings)


def test_the_cli_exits_4_when_a_metric_differs(project: dict[str, Any]) -> None:
    root, settings = project["root"], project["settings"]
    noisy = run_pipeline(
        root / "pipeline.yaml", {"noisy": "true"}, settings=settings, progress=False
    )
    env = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
    done = subprocess.run(
        [sys.executable, "-m", "jupyter_mlops.cli", "reproduce", noisy.run_id],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 4, done.stdout + done.stderr
    assert "train.score" in done.stdout and "DIFFERS" in done.stdout
    assert "metrics differ (tolerance 1e-06)" in done.stdout


def test_compare_counts_a_missing_metric_as_different() -> None:
    diffs = compare({"a": 1.0, "b": 2.0}, {"a": 1.0000001}, 1e-6)
    assert [(d.name, d.same) for d in diffs] == [("a", True), ("b", False)]


CELLS = [
    "%load_ext jupyter_mlops",
    "import math\nbase = 3",
    "dead = 1 / 0 if False else 7",  # read by nothing
    "offset = 1",
    "accuracy = math.sqrt(base + offset) / 4",
]


def test_a_cell_run_reproduces_as_its_chain_of_cells(project: dict[str, Any]) -> None:
    root, settings = project["root"], project["settings"]
    execute_notebook(write_notebook(root / "explore.ipynb", CELLS), timeout=300)
    drain(root)
    client = store.client(settings)
    ids = [e.experiment_id for e in client.search_experiments()]
    [cell] = client.search_runs(ids, filter_string="tags.`mlops.source` LIKE 'accuracy =%'")
    found = reproduce(cell.info.run_id, settings=settings)
    assert found.same and [d.name for d in found.diffs] == ["accuracy"], found.summary()
    assert found.where == "as a chain of 3 cell(s) in a fresh kernel"
    new = client.get_run(found.new_run_id)
    assert new.data.metrics["accuracy"] == 0.5
    parent = client.get_run(new.data.tags["mlflow.parentRunId"])
    assert parent.data.tags["mlops.kind"] == "reproduce"
    assert parent.data.tags["mlops.reproduces"] == cell.info.run_id
    assert parent.info.status == "FINISHED"
    magic = execute_notebook(
        write_notebook(
            root / "again.ipynb",
            ["%load_ext jupyter_mlops", f"%mlops reproduce {cell.info.run_id}"],
        ),
        timeout=300,
    )
    text = cell_text(magic.cells[1])
    assert f"reproduced cell run {cell.info.run_id} as a chain of 3 cell(s)" in text, text
    assert "every metric matches" in text
    [session] = client.search_runs(
        ids,
        filter_string="tags.`mlops.kind` = 'session' and tags.`mlflow.source.name` = 'explore.ipynb'",
    )
    with pytest.raises(UsageError, match="is a session run; reproduce takes a pipeline run"):
        reproduce(session.info.run_id, settings=settings)
    client.delete_tag(cell.info.run_id, "mlops.source")
    with pytest.raises(UsageError, match="has no recorded source"):
        reproduce(cell.info.run_id, settings=settings)
