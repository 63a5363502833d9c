"""Deployments tab against real server processes: Deploy starts one, the traffic share
changes the real traffic only once confirmed, Switch sends it all to one version, Stop stops
the process."""

from __future__ import annotations

import json
import re
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


def _traffic(settings: Settings, ident: str) -> dict[str, float]:
    """What the server process serves and what the deployment's state says, which agree."""
    d = manager.get_deployment(ident, settings=settings)
    live = _live_weights(d.url)
    assert live == pytest.approx(d.weights)
    return live


def _words(widget_html: str) -> str:
    return " ".join(text_of(widget_html).split())


def _ch(width: str) -> int:
    """The characters a ``calc(Nch + ...)`` width leaves room for."""
    found = re.match(r"calc\((\d+)ch", width)
    assert found, width
    return int(found.group(1))


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
    traffic = tab.traffic
    assert (traffic.share.min, traffic.share.max, traffic.share.step) == (0, 100, 1)
    assert traffic.share.value == 0 and traffic.share.description == "v3 share"
    # moving the slider only shows the split it would make
    traffic.share.value = 23
    assert not tab.worker.busy
    assert traffic.typed.value == 23
    assert _words(traffic.note.value) == "pending v1 77% / v3 23% (now v1 100%): Apply to review"
    assert _traffic(registry, deployment.id) == {"1": 1.0}
    # the live refresh keeps what the user is about to apply
    tab.refresh(quiet=True)
    tab.worker.wait()
    assert traffic.share.value == 23
    # Apply asks; Cancel puts the slider back on the real share
    traffic.apply_button.click()
    assert traffic.confirm_box.layout.display == ""
    assert _words(traffic.question.value) == (
        f"Move the production traffic of {deployment.id} from v1 100% to v1 77% / v3 23% ?"
    )
    assert _traffic(registry, deployment.id) == {"1": 1.0}
    traffic.cancel_button.click()
    assert traffic.confirm_box.layout.display == "none" and traffic.share.value == 0
    assert not tab.worker.busy and _traffic(registry, deployment.id) == {"1": 1.0}
    # a typed share, Apply, Confirm: the traffic moves
    traffic.typed.value = 25
    assert traffic.share.value == 25
    traffic.apply_button.click()
    traffic.confirm_button.click()
    tab.worker.wait()
    assert not tab.worker.failed, tab.worker.text
    assert _traffic(registry, deployment.id) == {"1": 0.75, "3": 0.25}
    assert tab.worker.text == f"{deployment.id}: traffic now v1 75% / v3 25%"
    assert "v1 75%, v3 25%" in text_of(tab.listing.value)
    assert traffic.confirm_box.layout.display == "none" and traffic.share.value == 25
    assert _words(traffic.note.value) == "now v1 75% / v3 25%"
    # Apply with nothing changed asks nothing
    traffic.apply_button.click()
    assert traffic.confirm_box.layout.display == "none"
    assert "nothing to apply" in _words(traffic.note.value)

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
    assert (tab.version.value, traffic.share.value) == ("3", 100)  # v3 takes it all now

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
        traffic = tab.traffic
        assert traffic.share.value == 100
        traffic.share.value = 50
        why = (
            f"deployment {d.id!r} serves only v1: deploy or switch to another version first, "
            "then send part of the traffic to v1"
        )
        assert _words(traffic.note.value) == why
        traffic.apply_button.click()
        assert traffic.confirm_box.layout.display == "none" and not traffic.asking
        assert _words(traffic.note.value) == why
        assert _traffic(registry, d.id) == {"1": 1.0}
    finally:
        manager.undeploy(d.id, settings=registry)


def test_typed_share_outside_0_to_100_is_refused_and_100_switches(
    registry: Settings, make_panel: Any
) -> None:
    d = manager.deploy("lin@champion", canary="lin/3", canary_weight=0.1, settings=registry)
    try:
        panel = make_panel(tab="deployments")
        tab = panel.deployments
        tab.deployment.value = d.id
        assert tab.version.value == "3"  # the canary is chosen first
        traffic = tab.traffic
        assert traffic.share.value == 10
        assert _words(traffic.note.value) == "now v1 90% / v3 10%"
        for bad in (150, -5):
            traffic.typed.value = bad
            note = _words(traffic.note.value)
            assert note == (
                f"traffic share {bad}%: type a whole percent from 0 to 100 "
                "(the share v3 gets; 100 sends it all traffic)"
            )
            assert "jp-mlops-widget-traffic-error" in traffic.note.value
            assert traffic.share.value == 10  # the slider keeps the last valid share
            traffic.apply_button.click()
            assert not traffic.asking and traffic.confirm_box.layout.display == "none"
            assert _words(traffic.note.value) == note
        assert _traffic(registry, d.id) == pytest.approx({"1": 0.9, "3": 0.1})

        # a question stays answerable only for what it asked: a move withdraws it
        traffic.typed.value = 40
        traffic.apply_button.click()
        assert traffic.asking
        traffic.share.value = 41
        assert not traffic.asking and traffic.confirm_box.layout.display == "none"

        traffic.typed.value = 100
        assert _words(traffic.note.value).startswith("pending v3 100% (now v1 90% / v3 10%)")
        traffic.apply_button.click()
        traffic.confirm_button.click()
        tab.worker.wait()
        assert not tab.worker.failed, tab.worker.text
        assert tab.worker.text == f"{d.id}: all traffic to v3"
        assert _traffic(registry, d.id) == {"3": 1.0}
    finally:
        manager.undeploy(d.id, settings=registry)


def test_dropdowns_are_wide_enough_for_their_longest_choice(
    registry: Settings, make_panel: Any
) -> None:
    d = manager.deploy("lin@champion", name="lin-with-a-rather-long-name", settings=registry)
    try:
        panel = make_panel(tab="deployments")
        tab = panel.deployments
        tab.deployment.value = d.id
        for dropdown in (tab.spec, tab.deployment, tab.version):
            longest = max(len(label) for label, _ in dropdown.options)
            assert _ch(dropdown.layout.width) >= longest + len(dropdown.description), (
                dropdown.description
            )
            assert dropdown.style.description_width == "initial"
        assert "lin@champion" in [o[0] for o in tab.spec.options]
        assert ("v1 @champion", "1") in tab.version.options
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
