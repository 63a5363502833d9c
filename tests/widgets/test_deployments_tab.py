"""Deployments tab against real server processes: Deploy starts one, the canary slider
changes the real traffic, Switch sends it all to one version, Stop stops the process."""

from __future__ import annotations

import json
import threading
import urllib.request
from typing import Any

import pytest

from jupyter_mlops.config import Settings
from jupyter_mlops.serving import manager
from tests.conftest import WAIT_S, wait_for_capture
from tests.widgets.conftest import text_of

pytestmark = pytest.mark.slow


def _live_weights(url: str) -> dict[str, float]:
    with urllib.request.urlopen(f"{url}/mlops/status", timeout=30) as response:
        return dict(json.loads(response.read())["weights"])


def _invoke(url: str, rows: int = 2) -> str:
    body = json.dumps({"inputs": [[1.0, 2.0, 3.0, 4.0]] * rows}).encode()
    request = urllib.request.Request(
        f"{url}/invocations", body, {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return str(response.headers["X-Model-Version"])


def test_deploy_canary_switch_and_stop(registry: Settings, make_panel: Any) -> None:
    panel = make_panel(tab="deployments")
    tab = panel.deployments
    assert "lin@champion" in [o[1] for o in tab.spec.options]
    before = {d.id for d in manager.deployments(settings=registry)}

    tab.spec.value = "lin@champion"
    tab.deploy_button.click()
    tab.worker.wait()
    assert not tab.worker.failed, tab.worker.text
    (deployment,) = [d for d in manager.deployments(settings=registry) if d.id not in before]
    assert tab.worker.text == f"deployed lin@champion as {deployment.id} at {deployment.url}"
    assert deployment.status == "running"
    assert _live_weights(deployment.url) == {"1": 1.0}
    assert tab.deployment.value == deployment.id
    assert "running" in text_of(tab.listing.value)

    tab.version.value = "3"
    assert tab.canary.value == 0.0
    tab.canary.value = 0.25  # the slider applies on release, like a user's drag
    tab.worker.wait()
    assert not tab.worker.failed, tab.worker.text
    assert _live_weights(deployment.url) == {"1": 0.75, "3": 0.25}
    assert tab.worker.text == f"{deployment.id}: v3 gets 25%, v1 the rest"
    assert "v1 75%, v3 25%" in text_of(tab.listing.value)

    for _ in range(5):
        _invoke(deployment.url)
    wait_for_capture(deployment.id, registry, 10)  # 5 requests of 2 rows
    tab.refresh()
    tab.worker.wait()
    row = [r for r in tab.listing.value.split("<tr") if deployment.id in r]
    assert f"{5 / 60:.2f}" in text_of(row[0]).split()

    tab.switch_button.click()
    tab.worker.wait()
    assert _live_weights(deployment.url) == {"3": 1.0}
    assert _invoke(deployment.url) == "3"
    assert (tab.version.value, tab.canary.value) == ("3", 0.0)  # v3 is no canary any more

    tab.stop_button.click()
    tab.worker.wait()
    assert tab.worker.text == f"stopped {deployment.id} (captured traffic kept)"
    assert manager.get_deployment(deployment.id, settings=registry).status == "stopped"
    assert not manager._alive(deployment.pid)
    assert tab.deployment.value is None


def test_deploy_clicked_during_a_slow_live_refresh_runs_after_it(
    registry: Settings, make_panel: Any
) -> None:
    """The panel's live refresh (every few seconds on this tab) must not swallow a click."""
    panel = make_panel(tab="deployments")
    tab = panel.deployments
    before = {d.id for d in manager.deployments(settings=registry)}
    loading, release = threading.Event(), threading.Event()
    load = tab._load

    def slow_load() -> Any:  # the real listing, once the test lets it go
        loading.set()
        assert release.wait(WAIT_S), "the test never released the refresh"
        return load()

    tab._load = slow_load
    try:
        tab.refresh(quiet=True)  # what the live refresh does
        assert loading.wait(WAIT_S)
        tab._load = load
        tab.spec.value = "lin@champion"
        tab.deploy_button.click()
        assert tab.worker.text == "deploying lin@champion…"
        assert tab.deploy_button.disabled and tab.stop_button.disabled
    finally:
        release.set()
        tab._load = load
        tab.worker.wait()
    (deployment,) = [d for d in manager.deployments(settings=registry) if d.id not in before]
    try:
        assert not tab.worker.failed, tab.worker.text
        assert tab.worker.text == f"deployed lin@champion as {deployment.id} at {deployment.url}"
        assert not tab.deploy_button.disabled and not tab.stop_button.disabled
        assert tab.deployment.value == deployment.id
    finally:
        manager.undeploy(deployment.id, settings=registry)


def test_canary_on_the_only_served_version_says_why(registry: Settings, make_panel: Any) -> None:
    d = manager.deploy("lin@champion", settings=registry)
    try:
        panel = make_panel(tab="deployments")
        tab = panel.deployments
        tab.deployment.value = d.id
        tab.version.value = "1"
        tab.canary.value = 0.5
        tab.worker.wait()
        assert tab.worker.failed
        assert tab.worker.text == (
            f"deployment {d.id!r} serves only v1: deploy or switch to another version first, "
            "then send part of the traffic to v1"
        )
        assert _live_weights(d.url) == {"1": 1.0}
    finally:
        manager.undeploy(d.id, settings=registry)


def test_actions_without_a_deployment_say_what_to_pick(registry: Settings, make_panel: Any) -> None:
    panel = make_panel(tab="deployments")
    tab = panel.deployments
    assert tab.deployment.value is None
    tab.stop_button.click()
    tab.worker.wait()
    assert tab.worker.text == "pick a running deployment first"
    assert tab.worker.failed
