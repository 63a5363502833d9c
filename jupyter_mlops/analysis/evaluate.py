"""``evaluate()``: a model's metrics, curves, slices, fairness and feature attributions on
labelled data, recorded as one evaluation run (``mlops.kind`` = ``evaluation``).

Metrics and the confusion matrix come from ``mlflow.models.evaluate`` on the packaged ONNX
model; curves, slices (fairlearn) and attributions (SHAP, captum) are logged beside them.
Promotion gates read the newest evaluation of a version (``registry/gates.py``).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from .. import store
from ..config import CONFIG_FILE, Settings, load_settings, model_settings
from ..exceptions import MlopsError
from . import charts
from .explain import BACKGROUND_ROWS, EXPLAIN_ROWS, Attributions, captum_values, shap_values
from .fairness import slice_report
from .model import Scorer, resolve
from .records import EVALUATED_RUN, PIPELINE_RUN, SLICES_TAG
from .scores import Scores, interpret


class EvaluationError(MlopsError):
    """The data or the settings do not fit the model being evaluated."""


@dataclass
class EvaluationResult:
    """What an evaluation found; ``run_id`` is the evaluation run holding the artifacts."""

    run_id: str
    model: str | None
    model_uri: str | None
    version: str | None
    source_run_id: str | None
    task: str
    rows: int
    metrics: dict[str, float]
    #: slice column -> metric -> group -> value
    slices: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    #: metric -> worst group ({column, group, value, count}; the lowest, or highest error)
    worst_slices: dict[str, dict[str, Any]] = field(default_factory=dict)
    fairness: dict[str, float] = field(default_factory=dict)
    explainer: str | None = None
    #: mean |attribution| of the top features, largest first
    importance: dict[str, float] = field(default_factory=dict)
    artifacts: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        head = self.model_uri or self.model or "model"
        shown = {k: v for k, v in self.metrics.items() if not k.startswith("slice_max_")}
        lines = [f"evaluation of {head} on {self.rows} rows (run {self.run_id})"]
        lines += [f"  {k} = {v:.4g}" for k, v in sorted(shown.items())]
        for metric, worst in self.worst_slices.items():
            lines.append(
                f"  worst slice on {metric}: {worst['column']}={worst['group']} "
                f"{worst['value']:.4g} ({worst['count']} rows)"
            )
        if self.importance:
            top = ", ".join(list(self.importance)[:5])
            lines.append(f"  features that move answers most ({self.explainer}): {top}")
        return "\n".join(lines)


def evaluate(
    model: Any,
    data: Any,
    target: str = "target",
    *,
    slices: list[str] | None = None,
    features: list[str] | None = None,
    model_type: str | None = None,
    name: str | None = None,
    explain: bool = True,
    explain_rows: int = EXPLAIN_ROWS,
    experiment: str | None = None,
    settings: Settings | None = None,
) -> EvaluationResult:
    """Evaluate a packaged model (or a torch module) on labelled ``data``; log one run.

    ``model`` is a ``PackagedModel``, a URI (``models:/digits/3``, ``models:/digits@champion``,
    ``runs:/<id>/model``) or a ``torch.nn.Module`` (attributions then by captum). ``data``
    is a DataFrame with the ``target`` column; ``slices`` (default: ``mlops.yaml``'s
    ``models.<name>.slices``) are columns of ``data`` not fed to the model, whose groups get
    their own metrics and fairness disparities. The features are the model's own columns
    for a table model, else every other column but the context columns mlops.yaml names
    (or ``features``). ``explain_rows`` bounds the rows attributions are computed for.
    ``experiment`` names the experiment of the evaluation run (default: the running step's,
    this kernel's session's, or ``interactive``).

    >>> result = jupyter_mlops.evaluate(packaged, test, target="label")  # doctest: +SKIP
    >>> result.metrics["accuracy_score"], result.fairness  # doctest: +SKIP
    (0.95, {'demographic_parity_difference': 0.04, 'equalized_odds_difference': 0.07})
    """
    import pandas as pd

    settings = settings or load_settings()
    if not isinstance(data, pd.DataFrame):
        raise EvaluationError(
            f"evaluate() takes the data as a pandas DataFrame, got {type(data).__name__}"
        )
    if target not in data.columns:
        raise EvaluationError(
            f"target column {target!r} is not in the data (columns: {_names(data.columns)})"
        )
    if len(data) == 0:
        raise EvaluationError("the data has no rows")
    scorer = resolve(model, settings)
    name = name or scorer.name
    slice_columns = _slice_columns(data, slices, name, settings)
    # context columns (captured beside a request, never fed to the model) are no features
    context = getattr(model_settings(settings, name), "context", ())
    others = [*slice_columns, *(c for c in context if c in data.columns)]
    X = _features(data, target, others, features, scorer)
    y = data[target].to_numpy()
    scores = interpret(scorer.run(X), y, model_type)
    return _record(settings, scorer, name, data, X, y, target, slice_columns, scores, explain,
                   explain_rows, experiment)  # fmt: skip


def _names(columns: Any, limit: int = 20) -> str:
    names = [str(c) for c in columns]
    more = f", ... ({len(names)} in all)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _slice_columns(
    data: Any, slices: list[str] | None, name: str | None, settings: Settings
) -> list[str]:
    if slices is None:
        columns = list(model_settings(settings, name).slices)
        origin = f"{settings.project_dir / CONFIG_FILE}: models.{name}.slices"
    else:
        columns = [slices] if isinstance(slices, str) else list(slices)
        origin = "slices=..."
    missing = [c for c in columns if c not in data.columns]
    if missing:
        raise EvaluationError(
            f"slice column {missing[0]!r} (from {origin}) is not in the data "
            f"(columns: {_names(data.columns)})"
        )
    return columns


def _features(
    data: Any, target: str, others: list[str], features: list[str] | None, scorer: Scorer
) -> Any:
    wanted = features or scorer.columns
    if wanted is None:
        return data.drop(columns=[target, *{c for c in others if c != target}])
    missing = [c for c in wanted if c not in data.columns]
    if missing:
        raise EvaluationError(
            f"the model reads column {missing[0]!r}, which is not in the data "
            f"(columns: {_names(data.columns)})"
        )
    if target in wanted:
        raise EvaluationError(f"the target column {target!r} cannot be a feature too")
    return data[list(wanted)]


@contextlib.contextmanager
def _quiet_mlflow() -> Iterator[None]:
    """MLflow's evaluator narrates each step at INFO; a notebook wants the result only."""
    import warnings

    logger = logging.getLogger("mlflow.models.evaluation")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            # the dataset MLflow logs infers a schema; an integer target is no model input
            warnings.filterwarnings("ignore", "Hint: Inferred schema contains integer")
            yield
    finally:
        logger.setLevel(level)


def _run_tags(
    settings: Settings, scorer: Scorer, name: str | None, experiment: str | None = None
) -> tuple[str, dict[str, str]]:
    from ..packaging.lineage import lineage_of

    lineage = lineage_of(settings)
    tags = {"mlops.kind": "evaluation", "mlops.evaluated_flavor": scorer.flavor}
    if name:
        tags["mlops.model_name"] = name
    if scorer.model_uri:
        tags["mlops.model_uri"] = scorer.model_uri
    if scorer.source_run_id:
        tags[EVALUATED_RUN] = scorer.source_run_id
    if scorer.version:
        tags["mlops.model_version"] = scorer.version
    if lineage.parent_run_id:
        tags["mlflow.parentRunId"] = lineage.parent_run_id
        parent = store.client(settings).get_run(lineage.parent_run_id).data.tags
        if parent.get("mlops.kind") == "step" and parent.get("mlflow.parentRunId"):
            tags[PIPELINE_RUN] = parent["mlflow.parentRunId"]
    if lineage.notebook:
        tags["mlflow.source.name"] = lineage.notebook
        tags["mlflow.source.type"] = "NOTEBOOK"
    if experiment:
        return store.get_or_create_experiment(settings, experiment), tags
    return lineage.experiment_id, tags


def _record(
    settings: Settings,
    scorer: Scorer,
    name: str | None,
    data: Any,
    X: Any,
    y: Any,
    target: str,
    slice_columns: list[str],
    scores: Scores,
    explain: bool,
    explain_rows: int,
    experiment: str | None = None,
) -> EvaluationResult:
    import mlflow

    client = store.client(settings)
    store.use_fluent(settings)
    experiment_id, tags = _run_tags(settings, scorer, name, experiment)
    label = f"evaluate {name or scorer.flavor}"
    run_id = client.create_run(experiment_id, tags=tags, run_name=label).info.run_id
    try:
        frame = X.copy()
        frame[target] = y
        predicted = scores.predicted

        def predict(features: Any) -> Any:
            # MLflow calls it on the whole frame, then once on its first row to test metrics
            return (
                predicted
                if len(features) == len(predicted)
                else interpret(scorer.run(features), y, scores.task).predicted
            )

        with mlflow.start_run(run_id=run_id), _quiet_mlflow():
            found = mlflow.models.evaluate(  # type: ignore[no-untyped-call]
                model=predict,
                data=frame,
                targets=target,
                model_type=scores.task,
                evaluator_config={"log_model_explainability": False},
            )
        metrics = {k: float(v) for k, v in found.metrics.items()}
        artifacts = sorted(found.artifacts)
        figures: dict[str, Any] = {}
        extra: dict[str, float] = {}
        if scores.proba is not None:
            extra.update(charts.curve_metrics(y, scores))
            figures["curves"] = charts.curves_figure(y, scores)
        result = EvaluationResult(
            run_id=run_id,
            model=name,
            model_uri=scorer.model_uri,
            version=scorer.version,
            source_run_id=scorer.source_run_id,
            task=scores.task,
            rows=len(data),
            metrics={},
        )
        if slice_columns:
            report = slice_report(
                y, scores.predicted, data[slice_columns], scores.task, scores.classes
            )
            extra.update(report.metrics())
            result.slices = report.by_group
            result.worst_slices = charts.worst(report)
            result.fairness = {k: float(v["value"]) for k, v in report.disparities.items()}
            payload = {"by_group": report.by_group, "extremes": report.extremes,
                       "disparities": report.disparities}  # fmt: skip
            client.log_text(run_id, json.dumps(payload, indent=2, default=str), "slices.json")
            client.set_tag(run_id, SLICES_TAG, json.dumps(report.extremes, default=str)[:5000])
            figures["slices"] = charts.slices_figure(report)
            artifacts.append("slices.json")
        if explain:
            attr = _attributions(scorer, X, scores, explain_rows)
            result.explainer = attr.method
            result.importance = dict(list(attr.importance().items())[:20])
            figures.update(charts.attribution_figures(attr))
            artifacts += charts.log_attributions(client, run_id, attr)
        for key, fig in figures.items():
            client.log_text(run_id, fig.to_json(), f"charts/{key}.json")
            artifacts.append(f"charts/{key}.json")
        if figures:
            client.log_text(run_id, charts.page(label, figures), "evaluation.html")
            artifacts.append("evaluation.html")
        _log_metrics(client, run_id, extra)
        result.metrics = {**metrics, **extra}
        result.artifacts = sorted(artifacts)
        client.set_terminated(run_id, "FINISHED")
    except Exception:
        client.set_terminated(run_id, "FAILED")
        raise
    return result


def _log_metrics(client: Any, run_id: str, values: dict[str, float]) -> None:
    import math
    import time

    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    logged = [Metric(k, float(v), now, 0) for k, v in values.items() if not math.isnan(v)]
    for start in range(0, len(logged), 900):  # under MLflow's 1000 per batch
        client.log_batch(run_id, metrics=logged[start : start + 900])


def _attributions(scorer: Scorer, X: Any, scores: Scores, rows: int) -> Attributions:
    import numpy as np

    rng = np.random.default_rng(0)
    picked = np.sort(rng.choice(len(X), min(rows, len(X)), replace=False))
    sample = X.iloc[picked]
    background = X.iloc[rng.choice(len(X), min(BACKGROUND_ROWS, len(X)), replace=False)]
    chosen = scores.chosen()
    if chosen is not None:
        chosen = chosen[picked]
    if scorer.module is not None:
        if chosen is None:
            out = scorer.run(sample.head(1))["output"]
            chosen = np.zeros(len(sample), dtype=int) if out.ndim == 2 else None
        return captum_values(scorer.module, sample, background, chosen)
    task = scores.task

    def score(features: Any) -> Any:
        found = interpret(scorer.run(features), np.asarray(scores.classes or []), task)
        return found.proba if task == "classifier" else found.predicted

    return shap_values(score, sample, background, chosen)
