"""Which features drive a deployment's answers now, against which drove them on the data the
version was trained on: Kernel SHAP of a sample of the window and of the reference sample,
both against the same background drawn from the reference, so the two are comparable.

The shift is the total variation distance between the two normalised importance vectors:
0 when the features weigh as they did at training, 1 when the answers now rest entirely on
features that did not matter then. Input drift says the data moved; this says the model now
decides on other grounds, which input drift alone cannot tell apart from harmless movement.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ..config import Settings
from ..exceptions import MlopsError

#: rows explained on each side, and rows of the shared background: they bound the cost
WINDOW_ROWS = 100
BACKGROUND_ROWS = 30


@dataclass
class AttributionShift:
    """Mean |attribution| per feature of the window and of the reference."""

    method: str
    window_rows: int
    reference_rows: int
    #: feature -> mean |attribution| over the window's sample, largest first
    window: dict[str, float]
    #: feature -> the same over the reference sample
    reference: dict[str, float]
    #: total variation distance of the normalised importances, in [0, 1]
    shift: float
    top_now: str
    top_reference: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def ranks(self) -> dict[str, tuple[int, int]]:
        """feature -> (rank now, rank at reference), 1 the most important."""
        now = {f: i for i, f in enumerate(self.window, start=1)}
        then = {f: i for i, f in enumerate(self.reference, start=1)}
        return {f: (now[f], then[f]) for f in self.window}

    def summary(self) -> str:
        moved = [f"{f} {then}->{now}" for f, (now, then) in self.ranks().items() if now != then][:5]
        top = (
            f"top feature {self.top_now} (as at training)"
            if self.top_now == self.top_reference
            else f"top feature now {self.top_now}, at training {self.top_reference}"
        )
        ranks = f"; ranks moved: {', '.join(moved)}" if moved else ""
        return f"attribution shift {self.shift:.2f}: {top}{ranks}"

    def figure(self) -> Any:
        """Grouped bars of each feature's share of the attribution, now and at training."""
        import plotly.graph_objects as go

        features = list(self.window)[:20]
        fig = go.Figure()
        for label, values, color in (
            ("reference", self.reference, "#1f77b4"),
            ("window", self.window, "#d62728"),
        ):
            total = sum(values.values()) or 1.0
            fig.add_trace(
                go.Bar(
                    x=features,
                    y=[values[f] / total for f in features],
                    name=label,
                    marker_color=color,
                )
            )
        fig.update_layout(
            barmode="group",
            title=f"Share of mean |attribution| ({self.method}): {self.summary()}",
            yaxis_title="share of attribution",
            xaxis={"type": "category"},
            height=360,
            margin={"t": 70, "b": 40},
        )
        return fig


def attribution_shift(
    settings: Settings,
    model: str,
    version: str,
    reference: Any,
    window: Any,
    *,
    rows: int = WINDOW_ROWS,
    background_rows: int = BACKGROUND_ROWS,
) -> AttributionShift:
    """Attributions of ``rows`` rows of ``window`` and of ``reference`` (two DataFrames of the
    model's input columns, aligned as drift compares them) for ``model`` v``version``."""
    import numpy as np

    from ..analysis.explain import shap_values
    from ..analysis.model import resolve
    from ..analysis.scores import interpret

    what = f"{model} v{version}"
    if window.empty:
        raise MlopsError(f"attributions of {what}: the window holds no captured inputs")
    if reference.empty:
        raise MlopsError(f"attributions of {what}: its reference sample is empty")
    numeric = [c for c in window.columns if window[c].dtype.kind in "biuf"]
    if len(numeric) != len(window.columns):
        other = ", ".join(str(c) for c in window.columns if c not in numeric)
        raise MlopsError(
            f"attributions of {what}: Kernel SHAP here explains numeric inputs only, and "
            f"{other} {'is' if len(window.columns) - len(numeric) == 1 else 'are'} not "
            "numeric (leave monitoring.attributions off for this model)"
        )
    scorer = resolve(f"models:/{model}/{version}", settings)
    rng = np.random.default_rng(0)

    def sample(frame: Any, n: int) -> Any:
        picked = np.sort(rng.choice(len(frame), min(n, len(frame)), replace=False))
        return frame.iloc[picked].reset_index(drop=True)

    background = sample(reference, background_rows)
    now, then = sample(window, rows), sample(reference, rows)
    first = scorer.run(now.head(2))
    widths = [v.shape[1] for v in first.values() if v.ndim == 2 and v.dtype.kind == "f"]
    # only the number of classes matters here, not their labels
    classes = np.arange(widths[0] if widths and widths[0] > 1 else 0)
    task = interpret(first, classes, None).task

    def score(features: Any) -> Any:
        found = interpret(scorer.run(features), classes, task)
        return found.proba if task == "classifier" else found.predicted

    def explain(frame: Any) -> dict[str, float]:
        chosen = interpret(scorer.run(frame), classes, task).chosen()
        return shap_values(score, frame, background, chosen).importance()

    window_importance, reference_importance = explain(now), explain(then)
    features = list(window_importance)
    p = np.array([window_importance[f] for f in features])
    q = np.array([reference_importance[f] for f in features])
    p, q = p / (p.sum() or 1.0), q / (q.sum() or 1.0)
    return AttributionShift(
        method="shap-kernel",
        window_rows=len(now),
        reference_rows=len(then),
        window=window_importance,
        reference=reference_importance,
        shift=float(0.5 * np.abs(p - q).sum()),
        top_now=features[0],
        top_reference=next(iter(reference_importance)),
    )
