"""Deployments tab: the live list (status, URL, traffic weights, request rate); Deploy an
alias; a traffic share that moves production traffic only once confirmed; Switch, Stop."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import ipywidgets as widgets

from ..registry.service import ModelInfo, models
from ..serving.canary import request_rate, set_canary
from ..serving.manager import Deployment, deploy, deployments, switch, undeploy
from ._context import PanelContext, choose, row
from ._html import table
from ._traffic import TrafficEditor, percents, split_text
from ._worker import Worker

#: the window the request rate is measured over
RATE_WINDOW_S = 60.0


@dataclass
class _Listing:
    deployments: list[Deployment]
    rates: dict[str, float]
    models: list[ModelInfo]


@dataclass
class _Done:
    listing: _Listing
    message: str
    deployment: str


#: descriptions take their own width, so a long label never eats the choice's room
_LABEL = {"description_width": "initial"}


def _fit(labels: list[str], label_ch: int = 11) -> widgets.Layout:
    """A dropdown as wide as its longest choice (``digits@challenger`` is never cut)."""
    # never wider than the panel: a narrow notebook shrinks it rather than cutting it off
    return widgets.Layout(width=_fit_width(labels, label_ch), max_width="100%")


def _fit_width(labels: list[str], label_ch: int = 11) -> str:
    longest = max([len(label) for label in labels] + [10])
    return f"calc({longest + label_ch}ch + 40px)"


def _weights(d: Deployment) -> str:
    return ", ".join(f"v{v} {w:.0%}" for v, w in sorted(d.weights.items(), key=lambda x: -x[1]))


class DeploymentsTab:
    title = "Deployments"

    def __init__(self, ctx: PanelContext) -> None:
        self.ctx = ctx
        self.worker = Worker()
        self.items: list[Deployment] = []
        self.infos: list[ModelInfo] = []
        self.listing = widgets.HTML()
        self.spec = widgets.Dropdown(description="serve", style=_LABEL, layout=_fit([]))
        self.deploy_button = widgets.Button(
            description="Deploy", button_style="primary", icon="rocket"
        )
        self.deployment = widgets.Dropdown(description="deployment", style=_LABEL, layout=_fit([]))
        self.version = widgets.Dropdown(description="version", style=_LABEL, layout=_fit([]))
        self.traffic = TrafficEditor(self._set_traffic)
        self.switch_button = widgets.Button(
            description="Switch", icon="exchange", tooltip="all traffic to this version, now"
        )
        self.stop_button = widgets.Button(description="Stop", button_style="danger", icon="stop")
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh")
        self.worker.controls = [
            self.deploy_button,
            self.switch_button,
            self.stop_button,
            self.refresh_button,
            *self.traffic.controls,
        ]
        self._syncing = False
        self.deploy_button.on_click(lambda _: self.deploy())
        self.switch_button.on_click(lambda _: self.switch())
        self.stop_button.on_click(lambda _: self.stop())
        self.refresh_button.on_click(lambda _: self.refresh())
        self.deployment.observe(lambda _: self._sync_controls(), "value")
        self.version.observe(lambda _: self._sync_controls(), "value")
        self.widget = widgets.VBox(
            [
                row([self.refresh_button]),
                self.listing,
                row([self.spec, self.deploy_button]),
                row([self.deployment, self.version, self.switch_button, self.stop_button]),
                self.traffic.widget,
                self.worker.widget,
            ]
        )

    # listing ---------------------------------------------------------------------------

    def _load(self) -> _Listing:
        settings = self.ctx.settings
        items = deployments(settings=settings)
        rates = {
            d.id: request_rate(d.id, RATE_WINDOW_S, settings=settings)
            for d in items
            if d.status == "running"
        }
        return _Listing(items, rates, models(settings=settings))

    def _show(self, listing: _Listing) -> None:
        self.items, self.infos = listing.deployments, listing.models
        rows = [
            [
                d.id,
                d.spec,
                d.status,
                d.url if d.status == "running" else "",
                _weights(d),
                f"{listing.rates[d.id]:.2f}" if d.id in listing.rates else "",
                f"@{d.follow}" if d.follow else "",
            ]
            for d in self.items
        ]
        self.listing.value = table(
            ("deployment", "serves", "status", "url", "traffic", "req/s (1 min)", "follows"),
            rows,
            empty="no deployments yet: pick a model alias and Deploy",
            css_class="jp-mlops-widget-deployments",
            nowrap=True,
        )
        specs = [f"{m.name}@{a}" for m in self.infos for a in sorted(m.aliases)]
        specs += [f"{m.name}/{v.version}" for m in self.infos for v in reversed(m.versions)]
        choose(self.spec, specs, "(no registered model)")
        self.spec.layout.width = _fit_width(specs or ["(no registered model)"], 6)
        self._syncing = True
        try:
            running = [d.id for d in self.items if d.status == "running"]
            choose(self.deployment, running, "(none running)")
            self.deployment.layout.width = _fit_width(running or ["(none running)"], 11)
        finally:
            self._syncing = False
        self._sync_controls()

    def _selected(self) -> Deployment | None:
        return next((d for d in self.items if d.id == self.deployment.value), None)

    def _sync_controls(self) -> None:
        """Version choices of the selected deployment's model; the traffic editor shows the
        selected version's share."""
        if self._syncing:
            return
        d = self._selected()
        self._syncing = True
        try:
            info = next((m for m in self.infos if d and m.name == d.model), None)
            versions = [v.version for v in reversed(info.versions)] if info else []
            labels = [
                f"v{v.version}" + "".join(f" @{a}" for a in sorted(v.aliases))
                for v in (reversed(info.versions) if info else [])
            ]
            keep = self.version.value
            choose(self.version, versions, "(none)", labels)
            self.version.layout.width = _fit_width(labels or ["(none)"], 8)
            if d is not None and keep not in versions and versions:
                # start on the canary if there is one, else on a version not served yet
                canary = min(d.weights, key=lambda v: d.weights[v]) if len(d.weights) > 1 else None
                spare = [v for v in versions if v not in d.weights]
                self.version.value = canary or (spare[0] if spare else versions[0])
            self.traffic.show(d, self.version.value)
        finally:
            self._syncing = False

    def refresh(self, *, quiet: bool = False) -> None:
        self.worker.run("loading deployments", self._load, self._show, quiet=quiet)

    # actions -----------------------------------------------------------------------------

    def _after(self, d: Deployment, message: str) -> _Done:
        return _Done(self._load(), message, d.id)

    def _run(self, label: str, job: Callable[[], _Done]) -> None:
        def show(done: _Done) -> str:
            self._show(done.listing)
            live = [o[1] for o in self.deployment.options]
            if done.deployment in live and self.deployment.value != done.deployment:
                self.deployment.value = done.deployment
            return done.message

        self.worker.run(label, job, show)

    def deploy(self) -> None:
        spec = self.spec.value
        settings = self.ctx.settings

        def job() -> _Done:
            self._need(spec, "pick a model alias or version to serve")
            d = deploy(spec, settings=settings)
            return self._after(d, f"deployed {d.spec} as {d.id} at {d.url}")

        self._run(f"deploying {spec}", job)

    def _set_traffic(self, ident: str, version: str, share: int) -> None:
        """What Confirm runs: ``share`` % to ``version``, the rest to the stable version; all
        of it (a switch) at 100 %."""
        settings = self.ctx.settings

        def job() -> _Done:
            if share >= 100:
                d = switch(ident, version, settings=settings)
                return self._after(d, f"{d.id}: all traffic to v{version}")
            d = set_canary(ident, version, share / 100, settings=settings)
            return self._after(d, f"{d.id}: traffic now {split_text(percents(d.weights))}")

        self._run(f"sending {share}% of {ident} to v{version}", job)

    def switch(self) -> None:
        ident, version, settings = self.deployment.value, self.version.value, self.ctx.settings

        def job() -> _Done:
            self._need(ident, "pick a running deployment first")
            self._need(version, "pick the version to switch to")
            d = switch(ident, version, settings=settings)
            return self._after(d, f"{d.id}: all traffic to v{version}")

        self._run(f"switching {ident} to v{version}", job)

    def stop(self) -> None:
        ident, settings = self.deployment.value, self.ctx.settings

        def job() -> _Done:
            self._need(ident, "pick a running deployment first")
            d = undeploy(ident, settings=settings)
            return self._after(d, f"stopped {d.id} (captured traffic kept)")

        self._run(f"stopping {ident}", job)

    @staticmethod
    def _need(value: object, message: str) -> None:
        if not value:
            from ..exceptions import UsageError

            raise UsageError(message)
