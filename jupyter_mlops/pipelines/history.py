"""Past pipeline runs, newest first."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from .. import store
from ..config import Settings
from ..table import format_rows


@dataclass
class PipelineRunInfo:
    run_id: str
    name: str
    status: str
    start_time: int
    duration_s: float | None
    params: dict[str, Any] = field(default_factory=dict)
    #: step -> status, in the order the steps can run
    steps: dict[str, str] = field(default_factory=dict)
    failed_step: str | None = None
    #: step -> seconds it took (0 for a cache hit), in the same order
    step_durations: dict[str, float] = field(default_factory=dict)
    #: while the pipeline runs: each running step's start (epoch ms); the others are
    #: "WAITING" or done in ``steps``
    step_started: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def pipeline_runs(
    settings: Settings, *, name: str | None = None, limit: int = 20
) -> list[PipelineRunInfo]:
    client = store.client(settings)
    experiments = {e.experiment_id: e.name for e in client.search_experiments()}
    if not experiments:
        return []
    query = "tags.`mlops.kind` = 'pipeline'"
    runs = client.search_runs(
        list(experiments),
        filter_string=query,
        max_results=limit if name is None else 1000,
        order_by=["attributes.start_time DESC"],
    )
    out = []
    for r in runs:
        exp_name = experiments.get(r.info.experiment_id, "")
        if name is not None and exp_name != name:
            continue
        end = r.info.end_time
        out.append(
            PipelineRunInfo(
                run_id=r.info.run_id,
                name=exp_name,
                status=r.info.status,
                start_time=r.info.start_time,
                duration_s=(end - r.info.start_time) / 1000 if end else None,
                params=json.loads(r.data.tags.get("mlops.pipeline_params", "{}")),
                steps=json.loads(r.data.tags.get("mlops.step_status", "{}")),
                failed_step=r.data.tags.get("mlops.failed_step"),
                step_durations=json.loads(r.data.tags.get("mlops.step_durations", "{}")),
                step_started=json.loads(r.data.tags.get("mlops.step_started", "{}")),
            )
        )
    return out[:limit]


def format_pipeline_runs(rows: list[PipelineRunInfo]) -> str:
    if not rows:
        return "no pipeline runs yet"
    import datetime

    body = []
    for r in rows:
        started = datetime.datetime.fromtimestamp(r.start_time / 1000).strftime("%Y-%m-%d %H:%M")
        steps = " ".join(f"{k}:{v.lower()}" for k, v in r.steps.items())
        body.append(
            [
                r.name,
                r.status,
                started,
                f"{r.duration_s:.1f}" if r.duration_s is not None else "",
                ", ".join(f"{k}={v}" for k, v in r.params.items()),
                steps,
                r.run_id,
            ]
        )
    return format_rows(
        ("pipeline", "status", "started", "seconds", "params", "steps", "run id"), body
    )
