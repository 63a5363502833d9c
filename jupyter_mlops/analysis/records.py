"""Where the evaluation of a model version is found, for promotion gates.

Kept free of heavy imports: ``promote()`` calls it only when a fairness or slice gate is set.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

#: evaluation-run tags: the run that logged the evaluated model (its package run), the
#: pipeline run when evaluation ran in a step, the worst and best slice of each metric
EVALUATED_RUN = "mlops.evaluated_run_id"
PIPELINE_RUN = "mlops.pipeline_run_id"
SLICES_TAG = "mlops.slices"


@dataclass
class EvaluationEvidence:
    """The newest evaluation of a model version: its run, metrics and slice extremes."""

    run_id: str
    metrics: dict[str, float]
    #: metric -> {"min": {column, group, value, count}, "max": {...}}
    slices: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)


def _newest(client: Any, filter_string: str) -> Any:
    ids = [e.experiment_id for e in client.search_experiments()]
    found = client.search_runs(
        ids, filter_string=filter_string, max_results=1, order_by=["attributes.start_time DESC"]
    )
    return found[0] if found else None


def find_evaluation(client: Any, source_run_id: str | None) -> EvaluationEvidence | None:
    """The newest finished evaluation of the model ``source_run_id`` logged, else the newest
    one of the pipeline run that packaged it (the standard pipeline evaluates the trained
    model in the step before packaging); None when there is neither."""
    if not source_run_id:
        return None
    base = "tags.`mlops.kind` = 'evaluation' and attributes.status = 'FINISHED'"
    run = _newest(client, f"{base} and tags.`{EVALUATED_RUN}` = '{source_run_id}'")
    if run is None:
        step = client.get_run(source_run_id).data.tags.get("mlflow.parentRunId")
        pipeline = client.get_run(step).data.tags.get("mlflow.parentRunId") if step else None
        if pipeline:
            run = _newest(client, f"{base} and tags.`{PIPELINE_RUN}` = '{pipeline}'")
    if run is None:
        return None
    try:
        slices = json.loads(run.data.tags.get(SLICES_TAG) or "{}")
    except ValueError:  # cut at the tag's length limit: gates fall back to the metrics
        slices = {}
    return EvaluationEvidence(run.info.run_id, dict(run.data.metrics), slices)
