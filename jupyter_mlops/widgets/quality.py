"""Quality tab: a deployment's labelled quality beside its version's, the worst slice and the
disparities against the policy's thresholds, the confusion matrix, why the policy acted,
and an audit report of the version it served."""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as widgets

from ..monitoring.quality_view import QualityView, confusion_figure, quality_view
from ..serving.manager import deployments
from ._context import PanelContext, choose, row
from ._figure import FigureView
from ._html import table
from ._worker import Worker


def _number(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def _view_html(view: QualityView) -> str:
    muted = "color:var(--jp-ui-font-color2)"
    parts = [html.escape(view.model) + (f" v{html.escape(view.version)}" if view.version else "")]
    if view.labelled_rows:
        parts.append(f"{view.labelled_rows} labelled rows")
    if view.run_id:
        parts.append(f'<span style="{muted}">monitor run {html.escape(view.run_id)}</span>')
    head = f"<p><b>{html.escape(view.deployment)}</b> ({', '.join(parts)})</p>"
    if view.empty:
        empty = html.escape(view.empty)
        return head + f'<p class="jp-mlops-widget-quality-empty" style="{muted}">{empty}</p>'
    lines = table(
        ("metric", "window", "version", "change", "threshold"),
        [
            [
                q.metric,
                _number(q.window),
                _number(q.version),
                _number(q.change, signed=True),
                q.threshold or "",
            ]
            for q in view.lines
        ],
        empty="no quality metrics",
        highlight=[q.breached for q in view.lines],
        css_class="jp-mlops-widget-quality",
    )
    fairness = (
        table(
            ("slices and disparities", "value", "threshold"),
            [[name, _number(value), bound or ""] for name, value, bound, _ in view.fairness],
            highlight=[hit for *_, hit in view.fairness],
            css_class="jp-mlops-widget-fairness",
        )
        if view.fairness
        else ""
    )
    shift = (
        f"<p>attribution shift {view.attribution_shift:.2f}</p>"
        if view.attribution_shift is not None
        else ""
    )
    reasons = (
        "<p><b>the policy acted:</b></p><ul>"
        + "".join(f"<li>{html.escape(r)}</li>" for r in view.reasons)
        + "</ul>"
        if view.reasons
        else ""
    )
    return head + lines + fairness + shift + reasons


class QualityTab:
    title = "Quality"

    def __init__(self, ctx: PanelContext) -> None:
        self.ctx = ctx
        self.worker = Worker()
        self.view: QualityView | None = None
        self.audited: Any = None
        self.deployment = widgets.Dropdown(
            description="deployment", layout=widgets.Layout(width="330px")
        )
        self.show_button = widgets.Button(description="Show", button_style="primary", icon="check")
        self.audit_button = widgets.Button(
            description="Audit report",
            icon="file-text",
            tooltip="write an audit report of the version this deployment served",
        )
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh")
        self.summary = widgets.HTML()
        self.figure = FigureView()
        self.links = widgets.HTML()
        self.worker.controls = [self.show_button, self.audit_button, self.refresh_button]
        self.show_button.on_click(lambda _: self.show())
        self.audit_button.on_click(lambda _: self.audit())
        self.refresh_button.on_click(lambda _: self.refresh())
        self.widget = widgets.VBox(
            [
                row([self.deployment, self.show_button, self.audit_button, self.refresh_button]),
                self.worker.widget,
                self.summary,
                self.figure.widget,
                self.links,
            ]
        )
        self._models: dict[str, str] = {}

    def refresh(self) -> None:
        """The deployments, and the quality of the one chosen (the first, at the start)."""
        settings, chosen = self.ctx.settings, self.deployment.value

        def job() -> tuple[dict[str, str], QualityView | None]:
            models = {d.id: d.model for d in deployments(settings=settings)}
            picked = chosen if chosen in models else next(iter(models), None)
            return models, None if picked is None else quality_view(
                settings, picked, models[picked]
            )

        def show(found: tuple[dict[str, str], QualityView | None]) -> None:
            self._models, view = found
            choose(self.deployment, list(self._models), "(no deployment yet)")
            if view is not None:
                self._show_view(view)

        self.worker.run("looking for deployments", job, show)

    def show(self) -> None:
        ident, settings = self.deployment.value, self.ctx.settings
        if not ident:
            return
        model = self._models.get(ident, "")

        def job() -> QualityView:
            return quality_view(settings, ident, model)

        self.worker.run(f"reading the quality of {ident}", job, self._show_view)

    def _show_view(self, view: QualityView) -> None:
        self.view = view
        self.summary.value = _view_html(view)
        if view.confusion:
            title = f"confusion matrix of the window ({view.deployment})"
            self.figure.show(confusion_figure(view.confusion, title))
        else:
            self.figure.clear()

    def audit(self) -> None:
        from ..audit import audit

        view, settings = self.view, self.ctx.settings

        def job() -> Any:
            if view is None or not view.version:
                from ..exceptions import UsageError

                raise UsageError("pick a deployment that has been monitored first")
            return audit(f"{view.model}/{view.version}", settings=settings)

        def show(report: Any) -> str:
            self.audited = report
            paths = [settings.relative(p) for p in (report.html, report.markdown)]
            self.links.value = (
                "<p>audit report: "
                + " · ".join(f"<code>{html.escape(p)}</code>" for p in paths)
                + "</p>"
            )
            return f"wrote {paths[0]}"

        self.worker.run("writing the audit report", job, show)
