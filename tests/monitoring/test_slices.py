"""Slices of labelled monitoring: traffic to a real iris classifier carries a context
column (a group derived from the sepal width, sent as a /v2 input), part of it is labelled, one group's labels
disagree, and the worst slice and the disparity act through the policy."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from jupyter_mlops import store
from jupyter_mlops.config import Settings, load_settings
from jupyter_mlops.exceptions import ConfigError
from jupyter_mlops.monitoring.labels import log_labels
from jupyter_mlops.monitoring.monitor import load_policy, monitor
from jupyter_mlops.monitoring.slices import SliceColumnError
from jupyter_mlops.monitoring.status import monitor_status
from jupyter_mlops.serving import manager
from tests.conftest import wait_for_capture
from tests.monitoring.iris import split

POLICY = """
models:
  iris:
    context: [group, region]
    slices: [group]
monitoring:
  drift_share: 1.0
  actions: [alert]
  slices: {accuracy: 0.8}
  fairness: {equalized_odds_difference: 0.5, demographic_parity_difference: 1.0}
"""


def _groups(x: np.ndarray) -> np.ndarray:
    return np.where(x[:, 1] >= 3.0, "wide", "narrow")


def _send(url: str, x: np.ndarray, groups: np.ndarray, batch: int = 10) -> list[str]:
    """Open Inference Protocol requests with the group as a context input (BYTES), and a
    region on every other request."""
    ids: list[str] = []
    for n, i in enumerate(range(0, len(x), batch)):
        rows, group = x[i : i + batch], groups[i : i + batch]
        inputs = [
            {"name": "input", "datatype": "FP32", "shape": list(rows.shape),
             "data": rows.ravel().tolist()},
            {"name": "group", "datatype": "BYTES", "shape": [len(rows)], "data": group.tolist()},
        ]  # fmt: skip
        if n % 2:
            inputs.append({"name": "region", "datatype": "BYTES", "shape": [len(rows), 1],
                           "data": ["north"] * len(rows)})  # fmt: skip
        body = json.dumps({"id": f"s{n}", "inputs": inputs}).encode()
        request = urllib.request.Request(
            f"{url}/v2/models/iris/infer", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200
        ids.extend(f"s{n}-{j}" for j in range(len(rows)))
    return ids


@pytest.mark.slow
def test_a_disagreeing_group_fails_the_worst_slice_and_the_policy_acts(
    iris_project: Settings,
) -> None:
    root: Path = iris_project.project_dir
    (root / "mlops.yaml").write_text(POLICY)
    settings = load_settings(root)
    _, x_test, _, y_test = split()
    groups = _groups(x_test)
    d = manager.deploy("iris@champion", name="sliced", settings=settings)
    ids = _send(d.url, x_test, groups)
    log = wait_for_capture("sliced", settings, len(ids))
    # context is captured, not a feature: drift compares the model's inputs only
    assert log.attrs["context"] == ["group", "region"]
    assert log.attrs["inputs"] == ["f0", "f1", "f2", "f3"]
    assert sorted(set(log["group"])) == ["narrow", "wide"]
    assert set(log["region"].dropna()) == {"north"} and log["region"].isna().sum() > 0

    # labels arrive for part of the traffic: right for "wide", wrong for "narrow"
    labelled = ids[:48]
    truth = y_test[:48].copy()
    narrow = groups[:48] == "narrow"
    truth[narrow] = (truth[narrow] + 1) % 3
    log_labels("sliced", labelled, truth.tolist(), settings=settings)
    result = monitor("sliced", "1h", settings=settings)

    assert {c["column"] for c in result.drift["columns"]} == {"f0", "f1", "f2", "f3"}
    assert result.slices is not None and result.slices["columns"] == ["group"]
    by_group = result.slices["by_group"]["group"]
    assert by_group["accuracy"]["narrow"] < 0.2 and by_group["accuracy"]["wide"] > 0.9
    assert by_group["count"]["narrow"] + by_group["count"]["wide"] == 48
    worst = result.slices["worst"]["accuracy"]
    assert (worst["column"], worst["group"]) == ("group", "narrow")
    assert result.triggered and result.actions == ["alert"]
    assert any(r.startswith("worst slice group=narrow") and "below 0.8" in r
               for r in result.reasons), result.reasons  # fmt: skip
    assert any(r.startswith("equalized_odds_difference by group") for r in result.reasons)
    assert not any("demographic_parity" in r for r in result.reasons)  # its bound is 1.0
    assert "slices by group: worst accuracy" in result.summary()

    run = store.client(settings).get_run(result.run_id)
    metrics = run.data.metrics
    assert metrics["slice_min_accuracy"] == pytest.approx(worst["value"])
    assert metrics["slice.group.narrow.accuracy"] == pytest.approx(by_group["accuracy"]["narrow"])
    assert "fairness_equalized_odds_difference" in metrics
    assert "fairness_demographic_parity_difference" in metrics
    assert "slices.json" in {a.path for a in store.client(settings).list_artifacts(run.info.run_id)}
    latest = monitor_status(settings, "sliced").latest
    assert latest is not None and latest.fairness["slice_min_accuracy"] == pytest.approx(
        worst["value"]
    )
    assert latest.reasons == result.reasons and latest.quality["labelled_rows"] == 48

    # a slice column the traffic does not carry: named, with what was captured
    (root / "mlops.yaml").write_text(POLICY.replace("slices: [group]", "slices: [age_band]"))
    with pytest.raises(SliceColumnError, match=(
        r"slice column 'age_band' \(models\.iris\.slices in .*mlops\.yaml\) is not in the "
        r"captured traffic of sliced \(captured columns: f0, f1, f2, f3, group, region\): add "
        r"it to models\.iris\.context"
    )):  # fmt: skip
        monitor("sliced", "1h", settings=load_settings(root))


def test_fairness_and_slice_thresholds_must_be_numbers(tmp_path: Path) -> None:
    (tmp_path / "mlops.yaml").write_text("")
    for text, message in (
        ("fairness: {demographic_parity_difference: high}",
         r"monitoring\.fairness\.demographic_parity_difference: must be a number \(the "
         r"largest disparity allowed, like 0\.2\), got 'high'"),
        ("fairness: {demographic_parity_difference: true}", r"must be a number .*got True"),
        ("slices: {accuracy: '0.8'}",
         r"monitoring\.slices\.accuracy: must be a number \(the bound of the worst slice, "
         r"like 0\.8\), got '0\.8'"),
        ("fairness: {parity: 0.1}", r"monitoring\.fairness: unknown key 'parity'"),
        ("slices: [accuracy]", r"monitoring\.slices: expected a mapping like \{accuracy: 0\.2\}"),
    ):  # fmt: skip
        (tmp_path / "mlops.yaml").write_text(f"monitoring:\n  {text}\n")
        with pytest.raises(ConfigError, match=message):
            load_policy(load_settings(tmp_path))
    (tmp_path / "mlops.yaml").write_text(
        "monitoring:\n  fairness: {demographic_parity_difference: 0.2}\n  slices: {accuracy: 1}\n"
    )
    policy = load_policy(load_settings(tmp_path))
    assert policy.slices.fairness == {"demographic_parity_difference": 0.2}
    assert policy.slices.slices == {"accuracy": 1.0}
