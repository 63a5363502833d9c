"""Tags, params and metrics of pipeline and step runs, the same however they are written:
directly by the runner, or as journal records by a fully cached run."""

from __future__ import annotations

import json
from typing import Any

from ..config import Settings
from .spec import PipelineSpec

_TAG_LIMIT = 8000
_PARAM_LIMIT = 6000


def json_tag(value: Any) -> str:
    text = json.dumps(value, default=str, sort_keys=True)
    return text if len(text) <= _TAG_LIMIT else text[: _TAG_LIMIT - 1] + "…"


def param_values(values: dict[str, Any]) -> dict[str, str]:
    return {k: str(v)[:_PARAM_LIMIT] for k, v in values.items()}


def pipeline_tags(
    spec: PipelineSpec, params: dict[str, Any], settings: Settings, extra: dict[str, str]
) -> dict[str, str]:
    return {
        "mlops.kind": "pipeline",
        "mlops.pipeline_file": settings.relative(spec.path),
        "mlops.pipeline_params": json_tag(params),
        "mlops.dag": json_tag({n: list(s.needs) for n, s in spec.steps.items()}),
        "mlflow.source.name": settings.relative(spec.path),
        "mlflow.source.type": "PROJECT",
        **extra,
    }


def step_tags(spec: PipelineSpec, name: str, key: str, settings: Settings) -> dict[str, str]:
    """A step run's tags but its parent, which the writer of the run knows."""
    return {
        "mlops.kind": "step",
        "mlops.step": name,
        "mlops.cache_key": key,
        "mlflow.source.name": settings.relative(spec.steps[name].notebook),
        "mlflow.source.type": "NOTEBOOK",
    }


def reuse_tags(source_run_id: str) -> dict[str, str]:
    return {"mlops.cache_hit": "true", "mlops.reused_run_id": source_run_id}


def output_metrics(outputs: dict[str, Any]) -> dict[str, float]:
    """The numeric outputs of a step, which its run also carries as metrics."""
    return {
        k: float(v)
        for k, v in outputs.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }
