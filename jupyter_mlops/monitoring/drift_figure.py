"""The drift chart of a report, a monitor run and the panel's Drift tab: every column's
drift on a log scale, most drifted first, and reference vs current histograms of the most
drifted columns.

A log scale because one column far past its threshold (a ratio of 50) would otherwise
flatten every other bar against the axis; the ratio 1 (the threshold) stays a straight line.
"""

from __future__ import annotations

from typing import Any

from .drift import ColumnDrift, _strength

#: how many of the most drifted columns get a histogram
TOP_HISTOGRAMS = 4
#: bars of columns far below their threshold (or with a ratio of 0) are drawn at this height,
#: so a log axis can show them; their hover text keeps the real score
_FLOOR = 1e-3
_DRIFT, _STABLE = "#d62728", "#1f77b4"


def by_drift(columns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The columns, most drifted first (score over threshold, p-values on a log scale)."""
    return sorted(columns, key=lambda c: -ratio(c))


def ratio(column: dict[str, Any]) -> float:
    """Above 1 when the column drifts."""
    fields = {k: column[k] for k in ColumnDrift.__dataclass_fields__}
    return float(_strength(ColumnDrift(**fields)))


def drift_figure(
    columns: list[dict[str, Any]],
    frames: tuple[Any, Any] | None = None,
    *,
    title: str | None = None,
    top: int = TOP_HISTOGRAMS,
) -> Any:
    """Bars of score / threshold per column (log y), then histograms of the ``top`` most
    drifted columns when the reference and current tables are at hand.

    ``DriftReport.figure()`` passes its tables; a stored monitor run has only the columns.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    ordered = by_drift(columns)
    ratios = [ratio(c) for c in ordered]
    shown = [c for c in ordered if c["drifted"]][:top] if frames is not None else []
    cols = max(1, len(shown))
    fig = make_subplots(
        rows=2 if shown else 1,
        cols=cols,
        specs=[[{"colspan": cols}] + [None] * (cols - 1)] + ([[{}] * cols] if shown else []),
        subplot_titles=[f"drift score / threshold, {len(ordered)} columns, most drifted first"]
        + [f"{c['column']} ({ratio(c):.3g}× threshold)" for c in shown],
        vertical_spacing=0.2,
    )
    fig.add_trace(
        go.Bar(
            x=[c["column"] for c in ordered],
            y=[max(r, _FLOOR) for r in ratios],
            marker_color=[_DRIFT if c["drifted"] else _STABLE for c in ordered],
            hovertext=[
                f"{c['method']}: {c['score']:.4g} vs threshold {c['threshold']:g} ({r:.3g}×)"
                for c, r in zip(ordered, ratios, strict=True)
            ],
            hoverinfo="x+text",
            name="score / threshold",
            showlegend=False,
        ),
        row=1,
        col=1,
    )
    fig.add_hline(y=1.0, line_dash="dash", line_color="gray", row=1, col=1)
    # 1, 2, 5, 10, 20, 50: plotly labels every minor tick of a short log range otherwise
    fig.update_yaxes(type="log", dtick="D2", title_text="× threshold", row=1, col=1)
    fig.update_xaxes(type="category", automargin=True, row=1, col=1)
    if shown and frames is not None:
        ref, cur = frames
        for i, c in enumerate(shown, start=1):
            for frame, label, color in ((ref, "reference", _STABLE), (cur, "current", _DRIFT)):
                fig.add_trace(
                    go.Histogram(
                        x=frame[c["column"]].dropna().to_numpy()[:20_000],
                        name=label,
                        legendgroup=label,
                        marker_color=color,
                        opacity=0.55,
                        histnorm="probability",
                        showlegend=i == 1,
                    ),
                    row=2,
                    col=i,
                )
        fig.update_layout(barmode="overlay")
    fig.update_layout(
        title=title,
        height=320 * (2 if shown else 1) + (40 if title else 0),
        margin={"t": 80 if title else 40, "b": 40},
        legend={"orientation": "h", "y": -0.08},
    )
    return fig
