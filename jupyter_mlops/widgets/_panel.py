"""The panel: one tab each for runs, models, deployments, drift and quality."""

from __future__ import annotations

import html
import threading
from collections.abc import MutableMapping
from typing import Any

import ipywidgets as widgets

from ..config import Settings, load_settings
from ._context import PanelContext
from ._worker import Worker
from .deployments import DeploymentsTab
from .drift import DriftTab
from .models import ModelsTab
from .quality import QualityTab
from .runs import RunsTab

TABS = ("runs", "models", "deployments", "drift", "quality")


class Panel(widgets.VBox):  # type: ignore[misc]
    """``%mlops panel``: runs, models, deployments, drift and quality of this project, in tabs.

    Every button calls the same service function as the matching ``%mlops`` command; the
    work runs on a thread, so the notebook stays usable, and errors show in the tab.
    """

    def __init__(
        self,
        namespace: MutableMapping[str, Any] | None = None,
        *,
        settings: Settings | None = None,
        tab: str = "runs",
        live_every: float | None = 5.0,
    ) -> None:
        from ..tracking import api

        if tab not in TABS:
            from ..exceptions import UsageError

            raise UsageError(f"tab {tab!r}: choose from {', '.join(TABS)}")
        settings = settings or load_settings()
        session = api.active_session()
        self.context = PanelContext(settings, namespace, session.experiment if session else None)
        self.runs = RunsTab(self.context)
        self.models = ModelsTab(self.context)
        self.deployments = DeploymentsTab(self.context)
        self.drift = DriftTab(self.context)
        self.quality = QualityTab(self.context)
        self.tabs = widgets.Tab(
            children=[t.widget for t in self._all()], titles=[t.title for t in self._all()]
        )
        self.tabs.selected_index = TABS.index(tab)
        header = widgets.HTML(
            f"<b>jupyter-mlops</b> · {html.escape(str(settings.project_dir))} · "
            f"<small>{html.escape(settings.tracking_uri)}</small>"
        )
        super().__init__([header, self.tabs])
        self.add_class("jp-mlops-widget-panel")
        for t in self._all():
            t.refresh()
        self._stop = threading.Event()
        if live_every:
            threading.Thread(
                target=self._live, args=(live_every,), name="mlops-panel live", daemon=True
            ).start()

    def _all(self) -> tuple[RunsTab, ModelsTab, DeploymentsTab, DriftTab, QualityTab]:
        return (self.runs, self.models, self.deployments, self.drift, self.quality)

    @property
    def workers(self) -> list[Worker]:
        return [t.worker for t in self._all()]

    def _live(self, every: float) -> None:
        """Keep the deployments list live while its tab is the one shown."""
        while not self._stop.wait(every):
            if self.tabs.selected_index == TABS.index("deployments"):
                self.deployments.refresh(quiet=True)

    def wait(self, timeout: float = 180.0) -> None:
        """Block until every tab's current job ended."""
        for worker in self.workers:
            worker.wait(timeout)

    def close(self) -> None:
        self._stop.set()
        super().close()
