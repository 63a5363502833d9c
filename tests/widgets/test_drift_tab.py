"""Drift tab: notebook tables, a version's reference sample and a deployment's captured
traffic as choices; verdict, chart (log scale, most drifted first, histograms of the most
drifted columns), then the per-column table folded away; Monitor on a real deployment."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest

from jupyter_mlops.config import Settings
from jupyter_mlops.monitoring.sources import DriftSource
from jupyter_mlops.serving import manager
from jupyter_mlops.widgets._figure import MIME
from tests.conftest import wait_for_capture
from tests.widgets.conftest import reference_frame, text_of

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shifted_deployment(registry: Settings) -> Iterator[manager.Deployment]:
    """A deployment of v1 that received shifted traffic."""
    d = manager.deploy("lin/1", name="lin-drift", settings=registry)
    try:
        rows = reference_frame(rows=200, shift=3.0, seed=1).to_numpy().tolist()
        for start in range(0, len(rows), 50):
            body = json.dumps({"inputs": rows[start : start + 50]}).encode()
            request = urllib.request.Request(
                f"{d.url}/invocations", body, {"Content-Type": "application/json"}
            )
            urllib.request.urlopen(request, timeout=30).close()
        wait_for_capture(d.id, registry, len(rows))
        yield d
    finally:
        manager.undeploy(d.id, settings=registry)


def test_sources_and_compare_two_notebook_tables(
    registry: Settings, shifted_deployment: Any, make_panel: Any
) -> None:
    namespace = {
        "train_df": reference_frame(),
        "recent_df": reference_frame(shift=1.5, seed=2),
        "not_a_table": [1, 2, 3],
    }
    panel = make_panel(namespace, tab="drift")
    tab = panel.drift
    labels = [o[0] for o in tab.reference.options]
    assert labels[:3] == ["variable recent_df", "variable train_df", "reference sample of lin v1"]
    assert "traffic of lin-drift" in labels
    # the defaults are the usual monitoring pair
    assert tab.reference.value == DriftSource("reference", "lin/1")
    assert tab.current.value.kind == "traffic"

    tab.reference.value = DriftSource("variable", "train_df")
    tab.current.value = DriftSource("variable", "recent_df")
    tab.compare_button.click()
    tab.worker.wait()
    assert not tab.worker.failed, tab.worker.text
    assert tab.worker.text == "variable train_df (400 rows) vs variable recent_df (400 rows)"
    assert text_of(tab.verdict.value).strip() == (
        "DRIFT: 4 of 4 columns drifted (100%): a, b, c, d"
    )
    columns = text_of(tab.columns.value)
    assert "numeric  K-S p_value" in columns and columns.count("DRIFT") == 4
    (output,) = tab.figure.widget.outputs
    figure = output["data"][MIME]
    assert sorted(figure["data"][0]["x"]) == ["a", "b", "c", "d"]
    assert figure["layout"]["yaxis"]["type"] == "log"
    assert "plotly.js" not in json.dumps(output)[:100_000] and len(json.dumps(output)) < 200_000


def test_reference_sample_against_captured_traffic_then_monitor(
    registry: Settings, shifted_deployment: Any, make_panel: Any
) -> None:
    panel = make_panel({}, tab="drift")
    tab = panel.drift
    assert tab.reference.value == DriftSource("reference", "lin/1")
    tab.current.value = DriftSource("traffic", "lin-drift")
    tab.compare_button.click()
    tab.worker.wait()
    assert not tab.worker.failed, tab.worker.text
    assert tab.worker.text == (
        "reference sample of lin v1 (400 rows) vs traffic of lin-drift (200 rows)"
    )
    assert "DRIFT: 4 of 4 columns drifted" in text_of(tab.verdict.value)

    tab.deployment.value = "lin-drift"
    tab.act.value = False
    tab.monitor_button.click()
    tab.worker.wait()
    assert not tab.worker.failed, tab.worker.text
    result = tab.monitor_result
    assert result.triggered and result.deployment == "lin-drift" and result.actions == []
    assert tab.worker.text == result.summary()
    assert "lin-drift (lin v1), 200 rows: 4 of 4 columns drifted (100%)" in tab.worker.text


@pytest.mark.parametrize(
    ("window", "message"),
    [
        ("soon", "window 'soon': write it like 15m, 1h or 2d"),
        ("0s", "window '0s' must be longer than zero"),
    ],
)
def test_bad_window_shows_the_message(
    registry: Settings, shifted_deployment: Any, make_panel: Any, window: str, message: str
) -> None:
    panel = make_panel({}, tab="drift")
    tab = panel.drift
    tab.window.value = window
    tab.compare_button.click()
    tab.worker.wait()
    assert tab.worker.failed
    assert tab.worker.text == message


def test_a_variable_gone_from_the_notebook_is_named(
    registry: Settings, shifted_deployment: Any, make_panel: Any
) -> None:
    namespace: dict[str, Any] = {"train_df": reference_frame()}
    panel = make_panel(namespace, tab="drift")
    tab = panel.drift
    tab.reference.value = DriftSource("variable", "train_df")
    del namespace["train_df"]
    tab.compare_button.click()
    tab.worker.wait()
    assert tab.worker.text == "no variable 'train_df' in this notebook"


def _figure(tab: Any) -> dict[str, Any]:
    (output,) = tab.figure.widget.outputs
    return dict(output["data"][MIME])


def test_chart_first_on_a_log_scale_with_the_most_drifted_columns_and_the_table_folded(
    registry: Settings, make_panel: Any
) -> None:
    rng = np.random.default_rng(3)
    names = [f"c{i}" for i in range(8)]
    # the further right, the stronger the shift: the most drifted columns come last
    shifts = np.array([0, 0, 0.3, 0, 0.45, 0.6, 0.8, 1.0])
    namespace = {
        "train_df": pd.DataFrame(rng.normal(0, 1, (400, 8)), columns=names),
        "recent_df": pd.DataFrame(rng.normal(0, 1, (400, 8)) + shifts, columns=names),
    }
    panel = make_panel(namespace, tab="drift")
    tab = panel.drift
    children = list(tab.widget.children)
    assert children.index(tab.verdict) < children.index(tab.figure.widget)
    assert children.index(tab.figure.widget) < children.index(tab.table)
    assert tab.table.layout.display == "none"  # nothing to fold before a comparison

    tab.reference.value = DriftSource("variable", "train_df")
    tab.current.value = DriftSource("variable", "recent_df")
    tab.compare_button.click()
    tab.worker.wait()
    assert not tab.worker.failed, tab.worker.text
    assert "DRIFT: 5 of 8 columns drifted" in text_of(tab.verdict.value)

    figure = _figure(tab)
    bars, *histograms = figure["data"]
    assert bars["type"] == "bar"
    assert bars["x"] == ["c7", "c6", "c5", "c4", "c2", "c1", "c3", "c0"]
    assert bars["y"] == sorted(bars["y"], reverse=True)
    assert figure["layout"]["yaxis"]["type"] == "log"
    assert [h["type"] for h in histograms] == ["histogram"] * 8  # reference and current, x4
    # each subplot holds one column's two histograms, the most drifted first
    by_axis: dict[str, set[float]] = {}
    for h in histograms:
        by_axis.setdefault(h["xaxis"], set()).add(round(float(np.mean(h["x"])), 6))
    expected = {
        axis: {round(float(namespace[t][column].mean()), 6) for t in ("train_df", "recent_df")}
        for axis, column in zip(("x2", "x3", "x4", "x5"), ("c7", "c6", "c5", "c4"), strict=True)
    }
    assert by_axis == expected
    titles = [a["text"] for a in figure["layout"]["annotations"]]
    assert [t.split()[0] for t in titles[1:5]] == ["c7", "c6", "c5", "c4"]

    # the table is there, folded, with the most drifted column first
    assert tab.table.layout.display == ""
    assert tab.table.selected_index is None
    assert tab.table.titles == ("per-column scores: 8 columns, 5 drifted",)
    rows = [text_of(r).split()[0] for r in re.findall(r"<tr[^>]*>(.*?)</tr>", tab.columns.value)]
    rows = rows[1:]  # the header
    assert rows == ["c7", "c6", "c5", "c4", "c2", "c1", "c3", "c0"]


def test_monitor_draws_the_chart_without_histograms(
    registry: Settings, shifted_deployment: Any, make_panel: Any
) -> None:
    panel = make_panel({}, tab="drift")
    tab = panel.drift
    tab.deployment.value = "lin-drift"
    tab.act.value = False
    tab.monitor_button.click()
    tab.worker.wait()
    assert not tab.worker.failed, tab.worker.text
    figure = _figure(tab)
    assert [t["type"] for t in figure["data"]] == ["bar"]
    assert figure["layout"]["yaxis"]["type"] == "log"
    assert sorted(figure["data"][0]["x"]) == ["f0", "f1", "f2", "f3"]
    assert tab.table.selected_index is None
    assert tab.table.titles == ("per-column scores: 4 columns, 4 drifted",)
