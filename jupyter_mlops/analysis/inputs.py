"""What the ``evaluate`` doors (``jupyter mlops evaluate``, ``%mlops evaluate``) read before
they call ``evaluate()``: a model spec as a URI, a data file inside the project, and the
short text they print of the result."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import store
from ..config import Settings
from ..exceptions import NotFoundError, UsageError
from .evaluate import EvaluationError, EvaluationResult

#: file types ``read_data`` reads
DATA_SUFFIXES = (".csv", ".parquet", ".pq")
#: the metrics a printed result leads with, when the evaluation computed them
MAIN_METRICS = (
    "accuracy_score",
    "f1_score",
    "precision_score",
    "recall_score",
    "roc_auc",
    "log_loss",
    "mean_absolute_error",
    "root_mean_squared_error",
    "r2_score",
)


def model_uri(spec: str) -> str:
    """``MODEL@ALIAS`` or ``MODEL/VERSION`` as the ``models:/`` URI ``evaluate()`` takes; a
    ``models:/`` or ``runs:/`` URI as it is."""
    from ..serving.manager import parse_spec

    spec = spec.strip()
    if spec.startswith(("models:/", "runs:/")):
        return spec
    if "@" not in spec and "/" not in spec:
        raise UsageError(
            f"evaluate {spec}: write MODEL@ALIAS, MODEL/VERSION, models:/... or runs:/..."
        )
    name, alias, version = parse_spec(spec)
    return f"models:/{name}@{alias}" if alias else f"models:/{name}/{version}"


def columns(raw: str | None) -> list[str] | None:
    """``--slices a,b`` as a list of columns; None (mlops.yaml's slices) when not given."""
    if raw is None:
        return None
    return [c.strip() for c in raw.split(",") if c.strip()]


def read_data(path: str | Path, settings: Settings) -> Any:
    """A CSV or Parquet file inside the project as a DataFrame."""
    import pandas as pd

    full = settings.resolve_inside(path)
    suffix = full.suffix.lower()
    if suffix not in DATA_SUFFIXES:
        raise EvaluationError(f"{path}: evaluation data is read from a .csv or .parquet file")
    if not full.is_file():
        raise NotFoundError(f"{path}: no such file")
    try:
        return pd.read_csv(full) if suffix == ".csv" else pd.read_parquet(full)
    except (ValueError, OSError) as err:
        raise EvaluationError(f"{path}: cannot be read as {suffix[1:]}: {err}") from None


def page_location(result: EvaluationResult, settings: Settings) -> str | None:
    """Where the run's ``evaluation.html`` is: a project-relative (or absolute) path on an
    embedded store, else its artifact URI; None when the evaluation drew no page."""
    if "evaluation.html" not in result.artifacts:
        return None
    from urllib.parse import unquote, urlparse

    root = store.client(settings).get_run(result.run_id).info.artifact_uri.rstrip("/")
    parsed = urlparse(root)
    if parsed.scheme not in ("", "file"):  # a served store: mlflow-artifacts:/..., s3://...
        return f"{root}/evaluation.html"
    return settings.relative(Path(unquote(parsed.path)) / "evaluation.html")


def describe(result: EvaluationResult, settings: Settings) -> str:
    """A few lines a terminal or a notebook shows: the run, the main metrics, the worst
    slices, the fairness disparities and where the evaluation's page is."""
    lines = [
        f"evaluation of {result.model_uri or result.model or 'model'} on {result.rows} rows: "
        f"run {result.run_id}"
    ]
    main = {k: result.metrics[k] for k in MAIN_METRICS if k in result.metrics}
    if main:
        lines.append("  " + ", ".join(f"{k} {v:.4g}" for k, v in main.items()))
    for metric, worst in result.worst_slices.items():
        lines.append(
            f"  worst slice on {metric}: {worst['column']}={worst['group']} "
            f"{worst['value']:.4g} ({worst['count']} rows)"
        )
    if result.fairness:
        lines.append(
            "  fairness: " + ", ".join(f"{k} {v:.4g}" for k, v in sorted(result.fairness.items()))
        )
    page = page_location(result, settings)
    if page:
        lines.append(f"  report: {page}")
    return "\n".join(lines)
