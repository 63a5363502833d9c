"""Runs tab: this notebook's cell runs and past pipeline runs, filtered, compared."""

from __future__ import annotations

import datetime

import ipywidgets as widgets

from ..tracking.compare import RunComparison, RunRow, compare_runs, list_runs
from ._context import PanelContext, row
from ._figure import FigureView
from ._html import table
from ._worker import Worker

_KINDS = {
    "cell and pipeline runs": ("cell", "pipeline"),
    "cell runs": ("cell",),
    "pipeline runs": ("pipeline",),
}
_STATUSES = [
    ("any status", ""),
    ("finished", "FINISHED"),
    ("failed", "FAILED"),
    ("running", "RUNNING"),
    ("killed", "KILLED"),
]


def _when(ms: int) -> str:
    return datetime.datetime.fromtimestamp(ms / 1000).strftime("%m-%d %H:%M:%S")


def _option(row: RunRow) -> tuple[str, str]:
    status = "" if row.status == "FINISHED" else f" {row.status}"
    label = row.label if len(row.label) <= 60 else row.label[:59] + "…"
    return f"{_when(row.start_time)}  {row.kind:<8} {label}{status}", row.run_id


class RunsTab:
    title = "Runs"

    def __init__(self, ctx: PanelContext) -> None:
        self.ctx = ctx
        self.worker = Worker()
        self.rows: list[RunRow] = []
        self.comparison: RunComparison | None = None
        self.filter = widgets.Text(
            placeholder="filter: words in the cell, params, status or run id",
            continuous_update=False,
            layout=widgets.Layout(width="340px"),
        )
        self.kind = widgets.Dropdown(options=list(_KINDS), layout=widgets.Layout(width="190px"))
        self.status = widgets.Dropdown(options=_STATUSES, layout=widgets.Layout(width="130px"))
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh")
        self.list = widgets.SelectMultiple(
            options=[], rows=10, layout=widgets.Layout(width="100%"), description=""
        )
        self.compare_button = widgets.Button(
            description="Compare", button_style="primary", tooltip="select two or more runs"
        )
        self.scope = widgets.HTML()
        self.params = widgets.HTML()
        self.figure = FigureView()
        self.worker.controls = [self.refresh_button, self.compare_button]
        self.filter.observe(lambda _: self.refresh(), "value")
        self.kind.observe(lambda _: self.refresh(), "value")
        self.status.observe(lambda _: self.refresh(), "value")
        self.refresh_button.on_click(lambda _: self.refresh())
        self.compare_button.on_click(lambda _: self.compare())
        self.widget = widgets.VBox(
            [
                row([self.filter, self.kind, self.status, self.refresh_button]),
                self.scope,
                self.list,
                row([self.compare_button, self.worker.widget]),
                self.params,
                self.figure.widget,
            ]
        )

    def refresh(self) -> None:
        experiment = self.ctx.experiment
        kinds = _KINDS[self.kind.value]
        status, text = self.status.value, self.filter.value

        def job() -> list[RunRow]:
            return list_runs(
                self.ctx.settings, experiment=experiment, kinds=kinds, status=status, text=text
            )

        def show(rows: list[RunRow]) -> None:
            self.rows = rows
            selected = set(self.list.value)
            self.list.options = [_option(r) for r in rows]
            self.list.value = tuple(r.run_id for r in rows if r.run_id in selected)
            where = f"this notebook ({experiment})" if experiment else "every notebook"
            self.scope.value = (
                f"<small>{len(rows)} runs · cell runs of {where} · pipeline runs of the project"
                " · select two or more to compare</small>"
            )

        self.worker.run("loading runs", job, show)

    def compare(self, run_ids: list[str] | None = None) -> None:
        ids = list(run_ids if run_ids is not None else self.list.value)

        def show(result: RunComparison) -> str:
            self.comparison = result
            header = ["param"] + [f"{r.label[:30]} ({r.run_id[:6]})" for r in result.runs]
            rows = [
                [name, *("" if v is None else v for v in values)]
                for name, values in result.params.items()
            ]
            differ = [len(set(v)) > 1 for v in result.params.values()]
            self.params.value = "<b>params</b> (differences shaded)" + table(
                header,
                rows,
                empty="these runs have no params",
                highlight=differ,
                css_class="jp-mlops-widget-params",
            )
            self.figure.show(result.figure())
            return f"compared {len(result.runs)} runs: {len(result.metrics)} metrics"

        self.worker.run("comparing runs", lambda: compare_runs(self.ctx.settings, ids), show)

    def select(self, run_ids: list[str]) -> None:
        self.list.value = tuple(run_ids)
