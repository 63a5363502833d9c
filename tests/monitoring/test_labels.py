"""Labels for captured predictions: POST /feedback on a real server, log_labels(), the CLI."""

from __future__ import annotations

import json
import stat

import pandas as pd
import pytest
from click.testing import CliRunner

from jupyter_mlops.cli import main
from jupyter_mlops.config import Settings
from jupyter_mlops.exceptions import NotFoundError
from jupyter_mlops.monitoring.labels import LabelsInputError, labelled_window, log_labels
from jupyter_mlops.serving import manager
from jupyter_mlops.serving.label_store import LABELS_FILE
from tests.conftest import wait_for_capture
from tests.monitoring.iris import post_feedback, send_named, split

pytestmark = pytest.mark.slow


def _joined(settings: Settings, deployment: str) -> pd.DataFrame:
    log = manager.inference_log(deployment, settings=settings)
    return labelled_window(log, settings, deployment).set_index("request_id")


def test_feedback_counts_bad_labels_and_keeps_them_past_the_server(
    iris_project: Settings,
) -> None:
    _, x_test, _, y_test = split()
    d = manager.deploy("iris@champion", name="prod", settings=iris_project)
    ids = send_named(d.url, x_test[:20], "req", batch=5)
    send_named(d.url, x_test[20:21], "single")  # one instance keeps its id as it is
    wait_for_capture("prod", iris_project, 21)
    good = [{"request_id": i, "label": int(y)} for i, y in zip(ids[:10], y_test[:10])]
    status, body = post_feedback(
        d.url,
        {
            "labels": [
                *good,
                {"request_id": ids[0], "label": int(y_test[0])},  # a duplicate in the batch
                {"request_id": "single0", "label": 1},
                {"request_id": "never-sent", "label": 2},  # unknown: kept, counted
                {"request_id": ids[11], "label": {"class": 1}},  # wrong type
                {"request_id": ids[12], "label": "setosa"},  # text among numbers
                {"request_id": "bad\u00e9id", "label": 1},
            ]
        },
    )
    assert status == 200, body
    assert body["received"] == 16
    assert (body["stored"], body["duplicates"], body["unknown"], body["invalid"]) == (12, 1, 1, 3)
    assert any("is a dict" in p for p in body["problems"])
    assert any("this deployment's labels are numbers" in p for p in body["problems"])
    # a second word on an id replaces the first: a correction
    status, body = post_feedback(d.url, {"request_id": ids[1], "label": 2})
    assert (status, body["corrections"], body["stored"]) == (200, 1, 1)
    for bad, message in (
        (b"not json", "the body is not JSON"),
        ({"labels": [{"id": "x"}]}, "item 0 has no request_id and label"),
    ):
        status, body = post_feedback(d.url, bad)
        assert status == 400 and message in body["message"], body
    manager.undeploy("prod", settings=iris_project)
    # stored with the project, owner-only: the stopped server took nothing with it
    path = iris_project.state_dir / "inference" / "prod" / LABELS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    joined = _joined(iris_project, "prod")
    assert len(joined) == 11  # ten of the batch and the single one; never-sent joins nothing
    assert joined.loc[ids[1], "label"] == 2 and joined.loc["single0", "label"] == 1
    assert joined.loc[ids[0], "label"] == int(y_test[0])


def test_feedback_needs_the_token_off_loopback(iris_project: Settings) -> None:
    x_test = split()[1]
    d = manager.deploy("iris@champion", name="open", host="0.0.0.0", settings=iris_project)
    assert d.token
    [rid] = send_named(d.url, x_test[:1], "t", token=d.token)
    status, body = post_feedback(d.url, {"request_id": rid, "label": 1})
    assert status == 401 and "bearer token" in body["message"]
    status, body = post_feedback(d.url, {"request_id": rid, "label": 1}, token=d.token)
    assert status == 200 and body["stored"] == 1


def test_a_label_before_its_request_is_captured_joins_later(iris_project: Settings) -> None:
    x_test = split()[1]
    d = manager.deploy("iris@champion", name="early", settings=iris_project)
    early = log_labels("early", ["soon0-0", "soon0-1", "one0"], [0, 1, 2], settings=iris_project)
    assert (early.stored, early.unknown) == (3, 3)  # nothing captured yet
    assert send_named(d.url, x_test[:2], "soon", batch=2) == ["soon0-0", "soon0-1"]
    assert send_named(d.url, x_test[2:3], "one") == ["one0"]
    wait_for_capture("early", iris_project, 3)
    joined = _joined(iris_project, "early")
    assert joined["label"].to_dict() == {"soon0-0": 0, "soon0-1": 1, "one0": 2}
    # a DataFrame, later: two corrections, of ids captured by now
    frame = pd.DataFrame({"request_id": ["one0", "soon0-0"], "label": [1, 0]})
    result = log_labels("early", frame, settings=iris_project)
    assert (result.stored, result.corrections, result.unknown) == (2, 2, 0)
    assert _joined(iris_project, "early").loc["one0", "label"] == 1


def test_cli_reads_csv_and_parquet_and_refuses_other_files(iris_project: Settings) -> None:
    _, x_test, _, _ = split()
    d = manager.deploy("iris@champion", name="cli", settings=iris_project)
    ids = send_named(d.url, x_test[:10], "c", batch=5)
    wait_for_capture("cli", iris_project, 10)
    root = iris_project.project_dir
    pd.DataFrame({"request_id": ids[:5], "label": [0, 1, 2, 0, 1]}).to_csv(
        root / "l.csv", index=False
    )
    pd.DataFrame({"request_id": ids[5:], "label": [2, 2, 2, 2, 2]}).to_parquet(root / "l.parquet")
    runner = CliRunner()
    out = runner.invoke(main, ["labels", "cli", "l.csv"])
    assert out.exit_code == 0, out.output
    assert "cli: 5 of 5 labels stored" in out.output
    out = runner.invoke(main, ["labels", "cli", "l.parquet", "--json"])
    assert out.exit_code == 0 and json.loads(out.output)["stored"] == 5
    assert len(_joined(iris_project, "cli")) == 10
    (root / "l.txt").write_text("request_id,label\n")
    pd.DataFrame({"id": ids[:1], "y": [1]}).to_csv(root / "cols.csv", index=False)
    for args, message in (
        (["labels", "cli", "l.txt"], "labels are read from a .csv or .parquet file"),
        (["labels", "cli", "cols.csv"], "has no column 'request_id' (it has id, y)"),
        (["labels", "ghost", "l.csv"], "no deployment 'ghost' (deployments: cli)"),
        (["labels", "cli", "missing.csv"], "no such file"),
    ):
        out = runner.invoke(main, args)
        assert out.exit_code == 1 and message in out.output, (args, out.output)


def test_bad_inputs_of_log_labels(iris_project: Settings) -> None:
    with pytest.raises(NotFoundError, match=r"no deployment 'ghost' \(deployments: none\)"):
        log_labels("ghost", ["a"], [1], settings=iris_project)
    manager.deploy("iris@champion", name="p", settings=iris_project)
    with pytest.raises(LabelsInputError, match="2 request ids but 1 labels"):
        log_labels("p", ["a", "b"], [1], settings=iris_project)
    with pytest.raises(LabelsInputError, match="has no column 'label'"):
        log_labels("p", pd.DataFrame({"request_id": ["a"]}), settings=iris_project)
    with pytest.raises(LabelsInputError, match="give labels, or a DataFrame"):
        log_labels("p", ["a"], settings=iris_project)
    result = log_labels(
        "p", ["a", "b", "c", "d", 7], [None, float("nan"), [1], "", 1], settings=iris_project
    )
    assert (result.stored, result.invalid) == (1, 4)  # the integer id 7 is read as "7"
    assert result.problems == [
        "a: label None is a NoneType, not a number or text",
        "b: label nan is not a finite number",
        "c: label [1] is a list, not a number or text",
        "d: label is empty text",
    ]
    assert "4 refused" in result.summary()
