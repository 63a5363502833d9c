"""Bad inputs and dead servers: each one answers with a message a user can act on."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jupyter_mlops.pipelines.runner import PipelineFailed, run_pipeline
from tests.conftest import cell_text, execute_notebook, free_port, write_notebook
from tests.pipelines.helpers import pipeline_file, step_notebook

STORE_COMMANDS = [
    ["runs"],
    ["pipelines"],
    ["models"],
    ["register", "models:/m-0123", "--name", "x"],
    ["promote", "x", "1", "--alias", "champion"],
    ["rollback", "x", "--alias", "champion"],
    ["monitor", "nowhere"],
    ["manifest", "x@champion", "--target", "kserve"],
]


def _cli(project: Path, *args: str, env: dict[str, str]) -> tuple[int, str, float]:
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "jupyter_mlops.cli", *args],
        cwd=project,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode, (done.stdout + done.stderr).strip(), time.monotonic() - start


@pytest.mark.parametrize("args", STORE_COMMANDS, ids=lambda a: a[0])
def test_every_store_command_answers_one_line_when_the_server_is_down(
    project: Path, args: list[str]
) -> None:
    uri = f"http://127.0.0.1:{free_port()}"
    code, out, seconds = _cli(project, *args, env={"MLFLOW_TRACKING_URI": uri})
    assert code == 1
    assert out == (
        f"error: cannot reach the tracking server {uri} (MLFLOW_TRACKING_URI): "
        "[Errno 111] Connection refused"
    )
    assert seconds < 10 + 30  # interpreter start on a busy machine included


def test_flush_with_a_dead_server_keeps_the_records_and_says_so(project: Path) -> None:
    uri = f"http://127.0.0.1:{free_port()}"
    code, out, _ = _cli(project, "flush", "--wait", "2", env={"MLFLOW_TRACKING_URI": uri})
    assert code == 1
    assert out.endswith("Connection refused; 0 records stay queued")


def test_an_unknown_store_scheme_is_refused_by_the_cli_and_at_load_ext(project: Path) -> None:
    env = {"MLFLOW_TRACKING_URI": "mongo://user:hunter2@db/x"}
    code, out, _ = _cli(project, "runs", env=env)
    expected = (
        "MLFLOW_TRACKING_URI=mongo://user:***@db/x: unknown store scheme 'mongo'; use "
        "sqlite:///PATH, http(s)://HOST:PORT (a tracking server) or postgresql://... "
        "(or unset MLFLOW_TRACKING_URI for the project's own store)"
    )
    assert (code, out) == (1, f"error: {expected}")
    nb = execute_notebook(
        write_notebook(project / "scheme.ipynb", ["%load_ext jupyter_mlops", "x = 1"]), env=env
    )
    text = cell_text(nb.cells[0])
    assert expected in text and "hunter2" not in text
    assert not (project / ".mlops" / "journal").exists() or not list(
        (project / ".mlops" / "journal").glob("*.jsonl")
    )


@pytest.mark.slow
def test_log_magic_and_log_metrics_say_what_they_did_not_log(project: Path) -> None:
    cells = [
        "%load_ext jupyter_mlops",
        "%mlops log loss=nan lr=0.1",
        "import jupyter_mlops\ntry:\n    jupyter_mlops.log_metrics(loss=1.0, step='x')\n"
        "except jupyter_mlops.MlopsError as err:\n    print(type(err).__name__, err)",
    ]
    nb = execute_notebook(write_notebook(project / "log.ipynb", cells))
    assert cell_text(nb.cells[1]).strip() == (
        "logged params ['lr'] and metrics [] to this cell's run; "
        "not logged: loss (not a finite number (nan))"
    )
    assert cell_text(nb.cells[2]).strip() == (
        "UsageError log_metrics: step must be a whole number, not 'x'"
    )


def test_a_parameters_cell_that_does_not_parse_is_named_with_its_line(project: Path) -> None:
    step_notebook(project / "broken.ipynb", "lr = 0.1\nepochs = = 3", "print(lr)")
    path = pipeline_file(
        project / "pipeline.yaml",
        {"name": "broken", "steps": {"train": {"notebook": "broken.ipynb", "params": {"lr": 1}}}},
    )
    with pytest.raises(PipelineFailed) as err:
        run_pipeline(path, progress=False)
    assert (
        f"{project / 'broken.ipynb'}: parameters cell: its parameters cell does not parse: "
        "line 2: invalid syntax"
    ) in str(err.value)
