"""The evaluation's plotly charts and the files they are logged as.

Each chart is logged as plotly JSON (``charts/<name>.json``, what a panel or the sidebar
draws) and all of them on one self-contained page (``evaluation.html``, plotly.js inlined
once, so it opens offline).
"""

from __future__ import annotations

import html
import json
import tempfile
from pathlib import Path
from typing import Any

from .explain import Attributions, importance_figure, spread_figure
from .fairness import LOWER_IS_BETTER, SliceReport
from .scores import Scores


def _one_vs_rest(y: Any, scores: Scores) -> list[tuple[str, Any, Any]]:
    """(label, is this class, its probability) per class; the positive class alone if binary."""
    import numpy as np

    classes = scores.classes or list(range(scores.proba.shape[1]))
    pairs = [(str(c), np.asarray(y) == c, scores.proba[:, j]) for j, c in enumerate(classes)]
    return pairs[-1:] if len(pairs) == 2 else pairs


def curve_metrics(y: Any, scores: Scores) -> dict[str, float]:
    """ROC AUC and average precision (macro over classes, one-vs-rest, when multiclass)."""
    import numpy as np
    from sklearn.metrics import average_precision_score, roc_auc_score

    aucs, aps = [], []
    for _, truth, prob in _one_vs_rest(y, scores):
        if truth.all() or not truth.any():  # a class absent from the data has no curve
            continue
        aucs.append(roc_auc_score(truth, prob))
        aps.append(average_precision_score(truth, prob))
    if not aucs:
        return {}
    return {"roc_auc": float(np.mean(aucs)), "average_precision": float(np.mean(aps))}


def curves_figure(y: Any, scores: Scores) -> Any:
    """ROC and precision-recall curves, one line per class (the positive class if binary)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots
    from sklearn.metrics import precision_recall_curve, roc_curve

    fig = make_subplots(rows=1, cols=2, subplot_titles=("ROC", "Precision-recall"))
    for label, truth, prob in _one_vs_rest(y, scores):
        if truth.all() or not truth.any():
            continue
        fpr, tpr, _ = roc_curve(truth, prob)
        precision, recall, _ = precision_recall_curve(truth, prob)
        group = f"class {label}"
        fig.add_trace(go.Scatter(x=fpr, y=tpr, name=group, legendgroup=group), 1, 1)
        fig.add_trace(
            go.Scatter(x=recall, y=precision, name=group, legendgroup=group, showlegend=False),
            1,
            2,
        )
    fig.update_xaxes(title_text="false positive rate", row=1, col=1)
    fig.update_yaxes(title_text="true positive rate", row=1, col=1)
    fig.update_xaxes(title_text="recall", row=1, col=2)
    fig.update_yaxes(title_text="precision", row=1, col=2)
    fig.update_layout(height=420)
    return fig


def worst(report: SliceReport) -> dict[str, dict[str, Any]]:
    """The worst group of each metric: the lowest score, or the highest error."""
    return {
        metric: ends["max" if metric in LOWER_IS_BETTER else "min"]
        for metric, ends in report.extremes.items()
    }


def slices_figure(report: SliceReport) -> Any:
    """Each metric per group, one bar group per slice column."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for column, metrics in report.by_group.items():
        for metric, groups in metrics.items():
            if metric == "count":
                continue
            counts = metrics["count"]
            fig.add_trace(
                go.Bar(
                    x=[f"{column}={g}" for g in groups],
                    y=list(groups.values()),
                    name=metric,
                    text=[f"n={counts[g]:.0f}" for g in groups],
                )
            )
    fairness = ", ".join(f"{k} {v['value']:.3f}" for k, v in report.disparities.items())
    fig.update_layout(
        barmode="group", title=f"Metrics per slice{'; ' + fairness if fairness else ''}"
    )
    return fig


def attribution_figures(attr: Attributions) -> dict[str, Any]:
    return {"importance": importance_figure(attr), "attributions": spread_figure(attr)}


def log_attributions(client: Any, run_id: str, attr: Attributions) -> list[str]:
    """The attributions as files: mean |attribution| per feature and every explained row."""
    import pandas as pd

    payload = {"method": attr.method, "rows": len(attr.values), "importance": attr.importance()}
    client.log_text(run_id, json.dumps(payload, indent=2), "explanations/importance.json")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "attributions.csv"
        pd.DataFrame(attr.values, columns=attr.features, index=attr.data.index).to_csv(path)
        client.log_artifact(run_id, str(path), "explanations")
    return ["explanations/importance.json", "explanations/attributions.csv"]


def page(title: str, figures: dict[str, Any]) -> str:
    """One offline HTML page holding every chart."""
    parts = []
    for i, fig in enumerate(figures.values()):
        parts.append(fig.to_html(full_html=False, include_plotlyjs=i == 0))
    body = "\n".join(parts)
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"</head><body><h1>{html.escape(title)}</h1>\n{body}\n</body></html>"
    )
