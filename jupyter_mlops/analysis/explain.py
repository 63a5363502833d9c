"""Feature attributions of a bounded sample: Kernel SHAP on the packaged ONNX model (any
model onnxruntime runs), captum's integrated gradients on a torch module.

``shap`` is called directly rather than through MLflow's evaluator: for a model that is not
a scikit-learn, XGBoost or CatBoost flavour, MLflow's SHAP explains the pyfunc's ``predict``
(the labels, not the scores) and draws matplotlib images; here every row is explained for
the class the model chose, and the charts are plotly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..exceptions import MlopsError

#: rows explained and rows of background, the two that bound the cost
EXPLAIN_ROWS = 150
BACKGROUND_ROWS = 50
_TOP = 20


@dataclass
class Attributions:
    """Attributions of ``values.shape[0]`` rows: one value per row and feature."""

    method: str
    features: list[str]
    values: Any  # ndarray [rows, features]
    data: Any  # the explained rows, DataFrame

    def importance(self) -> dict[str, float]:
        """Mean absolute attribution per feature, largest first."""
        import numpy as np

        mean = np.abs(self.values).mean(axis=0)
        order = np.argsort(-mean)
        return {self.features[i]: float(mean[i]) for i in order}


def _install_hint(extra: str, package: str) -> MlopsError:
    return MlopsError(
        f"feature attributions need {package}: pip install 'jupyter-mlops[{extra}]' "
        "(or evaluate(..., explain=False))"
    )


def shap_values(
    score: Callable[[Any], Any], sample: Any, background: Any, chosen: Any
) -> Attributions:
    """SHAP values of ``sample`` for the output ``chosen[i]`` of row i (None: one output)."""
    try:
        import shap
    except ImportError:
        raise _install_hint("analyse", "shap") from None
    import numpy as np
    import pandas as pd

    columns = list(sample.columns)
    dtypes = sample.dtypes.to_dict()

    def f(x: Any) -> Any:
        return score(pd.DataFrame(x, columns=columns).astype(dtypes))

    # Kernel SHAP, not the permutation explainer: the latter's maskers are numba functions
    # compiled in every new process (~30 s on two busy cores), longer than the explaining
    explainer = shap.KernelExplainer(f, background, keep_index=False)
    nsamples = min(2 ** len(columns), 2 * len(columns) + 128)
    values = np.asarray(explainer.shap_values(sample, nsamples=nsamples, l1_reg=False, silent=True))
    if values.ndim == 3 and values.shape[0] != len(sample):  # older shap: outputs first
        values = np.moveaxis(values, 0, -1)
    if values.ndim == 3:  # rows, features, outputs: the output each row was given
        values = values[np.arange(len(values)), :, np.asarray(chosen)]
    return Attributions("shap-kernel", [str(c) for c in columns], values, sample)


def captum_values(module: Any, sample: Any, background: Any, chosen: Any) -> Attributions:
    """Integrated gradients from the background's mean, for the class each row was given."""
    try:
        from captum.attr import IntegratedGradients
    except ImportError:
        raise _install_hint("analyse", "captum") from None
    import torch

    x = torch.tensor(sample.to_numpy(dtype="float32"))
    base = torch.tensor(background.to_numpy(dtype="float32")).mean(dim=0, keepdim=True)
    target = None if chosen is None else torch.as_tensor(chosen, dtype=torch.long)
    attr = IntegratedGradients(module).attribute(
        x, baselines=base.expand_as(x), target=target, n_steps=32
    )
    values = attr.detach().numpy()
    return Attributions(
        "captum-integrated-gradients", [str(c) for c in sample.columns], values, sample
    )


def importance_figure(attr: Attributions) -> Any:
    """A bar chart of the features that move the answers most."""
    import plotly.graph_objects as go

    top = list(attr.importance().items())[:_TOP]
    fig = go.Figure(
        go.Bar(x=[v for _, v in top][::-1], y=[k for k, _ in top][::-1], orientation="h")
    )
    fig.update_layout(
        title=f"Mean |attribution| ({attr.method}, {len(attr.values)} rows)",
        xaxis_title="mean |attribution|",
        height=max(300, 22 * len(top) + 120),
        margin={"l": 160},
    )
    return fig


def spread_figure(attr: Attributions) -> Any:
    """Each row's attribution for the top features, coloured by the feature's value."""
    import numpy as np
    import plotly.graph_objects as go

    top = list(attr.importance())[:10]
    fig = go.Figure()
    for rank, feature in enumerate(reversed(top)):
        i = attr.features.index(feature)
        raw = attr.data.iloc[:, i]
        colour = raw.to_numpy(dtype=float) if raw.dtype.kind in "biuf" else None
        jitter = np.random.default_rng(rank).uniform(-0.25, 0.25, len(raw))
        fig.add_trace(
            go.Scatter(
                x=attr.values[:, i],
                y=rank + jitter,
                mode="markers",
                name=feature,
                marker={"color": colour, "colorscale": "Bluered", "size": 5, "showscale": False},
                showlegend=False,
            )
        )
    fig.update_layout(
        title="Attribution per row (colour: the feature's value, low blue to high red)",
        xaxis_title="attribution",
        yaxis={"tickvals": list(range(len(top))), "ticktext": list(reversed(top))},
        height=max(300, 30 * len(top) + 120),
        margin={"l": 160},
    )
    return fig
