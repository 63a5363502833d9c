"""Drift tab: pick a reference and a current table (notebook variables, a model version's
reference sample, a deployment's captured traffic), see the verdict, the per-column chart
(log scale, most drifted first, histograms of the most drifted columns) and, folded away
under it, the per-column table; run Monitor on a deployment."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets

from ..monitoring.drift import DriftReport
from ..monitoring.drift_figure import by_drift, drift_figure
from ..monitoring.sources import DriftSource, drift_between, list_sources
from ..serving.manager import deployments
from ._context import PanelContext, choose, row
from ._figure import FigureView
from ._html import table
from ._worker import Worker


@dataclass
class _Choices:
    sources: list[DriftSource]
    deployments: list[str]


#: drift() tests strings, categories and booleans as categories, the rest as numbers
_KIND = {"cat": "categorical", "num": "numeric"}


def _columns_table(columns: list[dict[str, Any]]) -> str:
    columns = by_drift(columns)
    rows = [
        [
            c["column"],
            _KIND.get(c.get("column_type", ""), c.get("column_type", "")),
            c["method"],
            f"{c['score']:.4g}",
            f"{c['threshold']:g}",
            "DRIFT" if c["drifted"] else "",
        ]
        for c in columns
    ]
    return table(
        ("column", "type", "test", "score", "threshold", ""),
        rows,
        empty="no columns compared",
        highlight=[bool(c["drifted"]) for c in columns],
        css_class="jp-mlops-widget-drift",
    )


class DriftTab:
    title = "Drift"

    def __init__(self, ctx: PanelContext) -> None:
        self.ctx = ctx
        self.worker = Worker()
        self.report: DriftReport | None = None
        self.monitor_result: Any = None
        wide = widgets.Layout(width="330px")
        self.reference = widgets.Dropdown(description="reference", layout=wide)
        self.current = widgets.Dropdown(description="current", layout=wide)
        self.window = widgets.Text(
            value="1h",
            description="window",
            tooltip="traffic window",
            layout=widgets.Layout(width="150px"),
        )
        self.compare_button = widgets.Button(
            description="Compare", button_style="primary", icon="bar-chart"
        )
        self.deployment = widgets.Dropdown(description="deployment", layout=wide)
        self.act = widgets.Checkbox(
            value=True, description="apply the mlops.yaml policy", indent=False
        )
        self.monitor_button = widgets.Button(description="Monitor", icon="heartbeat")
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh")
        self.verdict = widgets.HTML()
        # 64 rows open scroll inside the fold, the chart stays in reach above them
        self.columns = widgets.HTML(layout=widgets.Layout(max_height="420px", overflow="auto"))
        # a wide table (64 columns is common) would push the chart out of sight: it comes
        # after the chart, folded until asked for
        self.table = widgets.Accordion(children=[self.columns], titles=["per-column scores"])
        self.table.selected_index = None
        self.table.layout.display = "none"
        self.figure = FigureView()
        self.worker.controls = [self.compare_button, self.monitor_button, self.refresh_button]
        self.compare_button.on_click(lambda _: self.compare())
        self.monitor_button.on_click(lambda _: self.monitor())
        self.refresh_button.on_click(lambda _: self.refresh())
        self.widget = widgets.VBox(
            [
                row([self.reference, self.current, self.refresh_button]),
                row([self.window, self.compare_button]),
                row([self.deployment, self.act, self.monitor_button]),
                self.worker.widget,
                self.verdict,
                self.figure.widget,
                self.table,
            ]
        )

    def refresh(self) -> None:
        settings, namespace = self.ctx.settings, self.ctx.namespace

        def job() -> _Choices:
            live = [d.id for d in deployments(settings=settings) if d.status == "running"]
            return _Choices(list_sources(namespace, settings), live)

        def show(choices: _Choices) -> None:
            sources, labels = choices.sources, [s.label for s in choices.sources]
            for dropdown, prefer in ((self.reference, "reference"), (self.current, "traffic")):
                fresh = dropdown.value not in sources
                choose(dropdown, sources, "(no table found)", labels)
                if fresh and sources:
                    dropdown.value = next((s for s in sources if s.kind == prefer), sources[0])
            choose(self.deployment, choices.deployments, "(none running)")

        self.worker.run("looking for tables", job, show)

    def compare(self) -> None:
        from ..monitoring.monitor import parse_window

        reference, current, window = self.reference.value, self.current.value, self.window.value
        settings, namespace = self.ctx.settings, self.ctx.namespace

        def job() -> DriftReport:
            if reference is None or current is None:
                from ..exceptions import UsageError

                raise UsageError("pick a reference and a current table first")
            return drift_between(
                reference, current, namespace, settings, window_s=parse_window(window)
            )

        def show(report: DriftReport) -> str:
            self.report = report
            first, _, notes = report.verdict().partition("\n")
            color = "#cf222e" if report.dataset_drift else "#1a7f37"
            self.verdict.value = (
                f'<p class="jp-mlops-widget-verdict" style="font-weight:bold;color:{color}">'
                f"{_escape(first)}</p>" + (f"<pre>{_escape(notes)}</pre>" if notes else "")
            )
            columns = report.to_dict()["columns"]
            self._show_columns(columns)
            # no title: the verdict stands right above the chart
            self.figure.show(report.figure(titled=False))
            return (
                f"{reference.label} ({report.reference_rows} rows) vs "
                f"{current.label} ({report.current_rows} rows)"
            )

        self.worker.run("comparing", job, show)

    def monitor(self) -> None:
        from ..monitoring.monitor import MonitorResult, monitor

        ident, window, act = self.deployment.value, self.window.value, self.act.value
        settings = self.ctx.settings

        def job() -> MonitorResult:
            if not ident:
                from ..exceptions import UsageError

                raise UsageError("pick a running deployment first")
            return monitor(ident, window, act=act, settings=settings)

        def show(result: MonitorResult) -> str:
            self.monitor_result = result
            columns = result.drift["columns"]
            self._show_columns(columns)
            # the monitor run keeps only the scores, so the chart has no histograms
            self.figure.show(drift_figure(columns))
            return result.summary()

        self.worker.run(f"monitoring {ident}", job, show)

    def _show_columns(self, columns: list[dict[str, Any]]) -> None:
        drifted = sum(bool(c["drifted"]) for c in columns)
        self.columns.value = _columns_table(columns)
        self.table.set_title(0, f"per-column scores: {len(columns)} columns, {drifted} drifted")
        self.table.layout.display = ""


def _escape(text: str) -> str:
    import html

    return html.escape(text)
