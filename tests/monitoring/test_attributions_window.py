"""Attributions at monitoring: the features that drive a deployed iris classifier's answers
in the window, against those that drove them on its reference sample, through Kernel SHAP,
on a real deployment's captured traffic."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from jupyter_mlops import store
from jupyter_mlops.config import Settings, load_settings
from jupyter_mlops.exceptions import ConfigError, MlopsError
from jupyter_mlops.monitoring.monitor import load_policy, monitor
from jupyter_mlops.monitoring.status import latest_monitor_run
from jupyter_mlops.serving import manager
from tests.conftest import wait_for_capture
from tests.monitoring.iris import send_named, split

PETALS = ["pl", "pw"]


def _settle(settings: Settings, ident: str, rows: np.ndarray) -> None:
    d = manager.deploy("iris@champion", name=ident, settings=settings)
    send_named(d.url, rows, ident, batch=10)
    wait_for_capture(ident, settings, len(rows))


@pytest.mark.slow
def test_the_window_is_explained_against_the_reference(iris_project: Settings) -> None:
    settings = iris_project
    x_train, x_test, _, _ = split()
    # as at training, and traffic whose petals (what iris is told apart by) are all alike
    # while its sepals swing far past anything in training
    _settle(settings, "same", x_test)
    rng = np.random.default_rng(1)
    odd = x_test.copy()
    odd[:, 2:] = x_train[:, 2:].mean(axis=0)
    odd[:, :2] = x_train[:, :2].mean(axis=0) + rng.normal(0, 15, (len(odd), 2))
    _settle(settings, "odd", odd.astype(np.float32))

    same = monitor("same", "1h", attributions=True, act=False, settings=settings)
    shifted = monitor("odd", "1h", attributions=True, act=False, settings=settings)

    usual = same.attributions
    assert usual is not None and usual["method"] == "shap-kernel"
    assert set(usual["window"]) == {"sl", "sw", "pl", "pw"} == set(usual["reference"])
    assert usual["top_reference"] in PETALS and usual["top_now"] in PETALS
    moved = shifted.attributions
    assert moved is not None and moved["top_now"] not in PETALS, moved
    assert moved["shift"] > usual["shift"] + 0.3, (usual["shift"], moved["shift"])
    assert "top feature now" in shifted.summary()

    # on the monitor run: metrics, the JSON and the chart; and in the REST-facing status
    client = store.client(settings)
    run = client.get_run(shifted.run_id)
    assert run.data.metrics["attribution_shift"] == pytest.approx(moved["shift"])
    for feature, value in moved["window"].items():
        assert run.data.metrics[f"attribution.window.{feature}"] == pytest.approx(value)
    names = {a.path for a in client.list_artifacts(shifted.run_id)}
    assert {"attributions.json", "attributions_figure.json"} <= names
    figure = json.loads(
        Path(client.download_artifacts(shifted.run_id, "attributions_figure.json")).read_text()
    )
    assert [t["name"] for t in figure["data"]] == ["reference", "window"]
    latest = latest_monitor_run(settings, "odd", "iris")
    assert latest is not None and latest.attribution_shift == pytest.approx(moved["shift"])
    assert latest.attributions["sl"]["window"] == pytest.approx(moved["window"]["sl"])
    # off by default: a plain check explains nothing
    plain = monitor("odd", "1h", act=False, settings=settings)
    assert plain.attributions is None


@pytest.mark.slow
def test_the_policy_acts_on_an_attribution_shift(iris_project: Settings) -> None:
    settings = iris_project
    x_train, x_test, _, _ = split()
    (settings.project_dir / "mlops.yaml").write_text(
        "monitoring:\n  drift_share: 1.0\n  attribution_shift: 0.3\n  actions: [alert]\n"
    )
    settings = load_settings(settings.project_dir)
    odd = x_test.copy()
    odd[:, 2:] = x_train[:, 2:].mean(axis=0)
    odd[:, :2] = x_train[:, :2].mean(axis=0) + np.random.default_rng(2).normal(0, 15, (60, 2))
    _settle(settings, "odd", odd.astype(np.float32))
    # a threshold on the shift turns the attributions on by itself
    result = monitor("odd", "1h", settings=settings)
    assert result.attributions is not None and result.triggered
    assert result.actions == ["alert"]
    [reason] = [r for r in result.reasons if r.startswith("attribution shift")]
    assert "(at least 0.3)" in reason and "top feature now" in reason


def _policy(tmp_path: Path, text: str) -> Settings:
    (tmp_path / "mlops.yaml").write_text(text)
    return load_settings(tmp_path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("monitoring:\n  attributions: 'yes'\n", "must be true or false, got 'yes'"),
        ("monitoring:\n  attribution_shift: 2\n", "must be a number in (0, 1], got 2"),
        ("monitoring:\n  attribution_shift: true\n", "must be a number in (0, 1], got True"),
    ],
)
def test_bad_attribution_settings_are_named(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as found:
        load_policy(_policy(tmp_path, text))
    assert message in str(found.value) and "monitoring.attribution" in str(found.value)


def test_inputs_that_cannot_be_explained_are_named(iris_project: Settings) -> None:
    import pandas as pd

    from jupyter_mlops.monitoring.attributions import attribution_shift

    reference = pd.DataFrame({"sl": [1.0, 2.0], "colour": ["red", "blue"]})
    with pytest.raises(MlopsError) as found:
        attribution_shift(iris_project, "iris", "2", reference, reference)
    assert "explains numeric inputs only, and colour is not numeric" in str(found.value)
    with pytest.raises(MlopsError) as empty:
        attribution_shift(iris_project, "iris", "2", reference, reference.iloc[:0])
    assert "iris v2: the window holds no captured inputs" in str(empty.value)
