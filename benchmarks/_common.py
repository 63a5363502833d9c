"""Shared helpers of the benchmark scripts: a throwaway project, percentiles, run counts."""

from __future__ import annotations

import math
import os
import statistics
import tempfile
from pathlib import Path
from typing import Any


def fresh_project(prefix: str) -> Path:
    """A new empty project directory (an empty ``mlops.yaml`` makes it the project root).

    ``MLFLOW_TRACKING_URI`` is dropped so the project's embedded SQLite store is used, and
    MLflow's own log lines are limited to warnings.
    """
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    os.environ.pop("MLFLOW_REGISTRY_URI", None)
    root = Path(tempfile.mkdtemp(prefix=f"jupyter-mlops-{prefix}-")).resolve()
    (root / "mlops.yaml").write_text("")
    return root


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100), nearest rank."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def median(values: list[float]) -> float:
    return statistics.median(values)


def count_cell_runs(settings: Any, experiment: str) -> int:
    """Cell runs (``mlops.kind = cell``) of ``experiment`` in the project's store."""
    from jupyter_mlops import store

    mlf = store.client(settings)
    found = mlf.get_experiment_by_name(experiment)
    if found is None:
        return 0
    total = 0
    token = None
    while True:
        page = mlf.search_runs(
            [found.experiment_id],
            filter_string="tags.`mlops.kind` = 'cell'",
            max_results=1000,
            page_token=token,
        )
        total += len(page)
        token = page.token
        if not token:
            return total
