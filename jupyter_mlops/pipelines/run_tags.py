"""Tags, params and metrics of pipeline and step runs, the same however they are written:
directly by the runner, or as journal records by a fully cached run."""

from __future__ import annotations

import json
from typing import Any

from ..config import Settings
from ..vcs import changed_files, git_commit
from .spec import PipelineSpec

_TAG_LIMIT = 8000
_PARAM_LIMIT = 6000


def json_tag(value: Any, *, sort: bool = True) -> str:
    """``value`` as a JSON tag; ``sort=False`` keeps a mapping's order (steps in DAG order)."""
    text = json.dumps(value, default=str, sort_keys=sort)
    return text if len(text) <= _TAG_LIMIT else text[: _TAG_LIMIT - 1] + "…"


def step_status_tags(
    spec: PipelineSpec, status: dict[str, str], durations: dict[str, float]
) -> dict[str, str]:
    """Each step's status and seconds, in the order the steps can run (the spec's DAG order)."""
    order = [n for n in spec.order if n in status]
    return {
        "mlops.step_status": json_tag({n: status[n] for n in order}, sort=False),
        "mlops.step_durations": json_tag(
            {n: round(durations.get(n, 0.0), 3) for n in order}, sort=False
        ),
    }


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
        **git_tags(spec.base_dir),
        **extra,
    }


def git_tags(cwd: Any) -> dict[str, str]:
    """The commit the pipeline ran from, and whether tracked files differed from it."""
    commit = git_commit(cwd)
    if commit is None:
        return {}
    return {
        "mlflow.source.git.commit": commit,
        "mlops.git_dirty": "true" if changed_files(cwd) else "false",
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
