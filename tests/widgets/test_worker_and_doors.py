"""The panel's worker (off the main thread, errors as messages) and its doors."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import pytest

import jupyter_mlops
from jupyter_mlops.exceptions import NotFoundError, UsageError
from jupyter_mlops.magics import help_message, run_line
from jupyter_mlops.widgets import Panel
from jupyter_mlops.widgets._worker import Worker
from tests.conftest import WAIT_S


def test_job_runs_off_the_main_thread_and_the_caller_returns_at_once() -> None:
    worker = Worker()
    release = threading.Event()
    seen: list[str] = []

    def job() -> str:
        seen.append(threading.current_thread().name)
        release.wait(10)
        return "done"

    assert worker.run("waiting", job, lambda result: f"job said {result}")
    assert worker.busy and worker.text == "waiting…"
    assert worker.progress.layout.display == ""
    assert not worker.run("again", job), "a second job must not start while one runs"
    assert worker.text == "still working on the previous request; try again when it ends"
    release.set()
    worker.wait()
    assert seen == ["mlops-panel waiting"]
    assert worker.text == "job said done" and not worker.failed
    assert worker.progress.layout.display == "none"


def test_a_users_job_waits_for_a_slow_quiet_refresh_then_runs_and_shows() -> None:
    """A click during a background refresh is not refused: it runs once the refresh ends."""
    worker = Worker()
    button = widgets.Button()
    worker.controls = [button]
    refreshing, release = threading.Event(), threading.Event()
    order: list[str] = []

    def slow_refresh() -> None:
        refreshing.set()
        assert release.wait(WAIT_S), "the test never released the refresh"
        order.append("refresh")

    def promote() -> str:
        order.append("promote")
        return "2"

    assert worker.run("refreshing", slow_refresh, quiet=True)
    assert refreshing.wait(WAIT_S)
    assert worker.busy and worker.text == "" and not button.disabled  # quiet: nothing shown
    assert worker.run("promoting", promote, lambda version: f"moved to v{version}")
    assert worker.text == "promoting…" and button.disabled
    assert worker.progress.layout.display == ""
    assert not worker.run("refreshing", slow_refresh, quiet=True), "one refresh at a time"
    assert order == []
    release.set()
    worker.wait()
    assert order == ["refresh", "promote"]
    assert worker.text == "moved to v2" and not worker.failed
    assert not button.disabled, "controls come back once the user's job ended"
    assert worker.progress.layout.display == "none"


def test_a_second_users_job_behind_a_quiet_refresh_is_refused() -> None:
    worker = Worker()
    release = threading.Event()
    ran: list[str] = []
    assert worker.run("refreshing", lambda: release.wait(WAIT_S), quiet=True)
    assert worker.run("first", lambda: ran.append("first"), lambda _: "first done")
    assert not worker.run("second", lambda: ran.append("second"))
    assert worker.text == "still working on the previous request; try again when it ends"
    release.set()
    worker.wait()
    assert ran == ["first"] and worker.text == "first done"


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (NotFoundError("no deployment 'x'"), "no deployment 'x'"),
        (ValueError("bad value\n  more lines of detail"), "unexpected ValueError: bad value"),
        (KeyError("k"), "unexpected KeyError: 'k'"),
    ],
)
def test_errors_show_as_one_message_without_traceback(error: Exception, message: str) -> None:
    worker = Worker()
    button = __import__("ipywidgets").Button()
    worker.controls = [button]

    def job() -> None:
        raise error

    worker.run("failing", job)
    worker.wait()
    assert worker.failed and worker.text == message
    assert "Traceback" not in worker.message.value
    assert 'class="jp-mlops-widget-message jp-mlops-widget-error"' in worker.message.value
    assert not button.disabled, "controls come back after a failure"


def test_panel_magic_and_function(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "panel" in help_message()
    with pytest.raises(UsageError, match="argument --tab: invalid choice: 'bogus'"):
        run_line("panel --tab bogus", {})
    assert run_line("panel --tab models", {}) == ""
    shown = capsys.readouterr().out
    assert shown.startswith("Panel(children=")  # displayed outside a front end: its repr
    panel: Any = jupyter_mlops.panel({}, tab="drift")
    try:
        assert isinstance(panel, Panel)
        assert panel.tabs.selected_index == 3
        assert [panel.tabs.get_title(i) for i in range(4)] == [
            "Runs",
            "Models",
            "Deployments",
            "Drift",
        ]
        panel.wait()
        assert panel.models.worker.text == "" and not panel.models.worker.failed
        assert "no registered models yet" in panel.models.listing.value
    finally:
        panel.close()


def test_drift_chart_bars_cross_one_exactly_for_drifted_columns() -> None:
    """p-value tests (small data) drift below their threshold, distances above it: the
    chart's bars are above 1 for the drifted columns either way."""
    from jupyter_mlops.monitoring.drift import drift
    from tests.widgets.conftest import reference_frame

    for rows in (300, 5000):  # K-S p-values, then Wasserstein distances
        ref = reference_frame(rows)
        cur = reference_frame(rows, seed=1).assign(a=lambda f: f["a"] + 1.0)
        report = drift(ref, cur)
        bars = dict(zip(report.figure().data[0].x, report.figure().data[0].y, strict=True))
        assert report.drifted_columns == ["a"], report.summary()
        assert bars["a"] > 1 and all(bars[c] < 1 for c in "bcd"), (rows, bars)
