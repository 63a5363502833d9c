"""Reading tracked runs back: what ``%mlops runs``, the CLI and the REST layer show."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .. import store
from ..config import Settings
from ..exceptions import NotFoundError
from ..table import format_rows


@dataclass
class CellRun:
    """One tracked cell run, as every door renders it."""

    run_id: str
    experiment: str
    execution_count: str | None
    status: str
    start_time: int
    duration_s: float | None
    source_preview: str
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _cell_run(run: Any, experiment: str) -> CellRun:
    tags = run.data.tags
    metrics = dict(run.data.metrics)
    duration = metrics.pop("mlops.duration_s", None)
    error = None
    if tags.get("mlops.error_type"):
        error = f"{tags['mlops.error_type']}: {tags.get('mlops.error_message', '')}".strip()
    return CellRun(
        run_id=run.info.run_id,
        experiment=experiment,
        execution_count=tags.get("mlops.execution_count"),
        status=run.info.status,
        start_time=run.info.start_time,
        duration_s=duration,
        source_preview=tags.get("mlops.source_preview", ""),
        params=dict(run.data.params),
        metrics=metrics,
        error=error,
    )


def cell_runs(
    settings: Settings,
    *,
    session_run_id: str | None = None,
    experiment: str | None = None,
    limit: int = 20,
) -> list[CellRun]:
    """Newest cell runs first: of one session, one experiment, or the whole project."""
    client = store.client(settings)
    if experiment is not None:
        found = client.get_experiment_by_name(experiment)
        if found is None:
            raise NotFoundError(f"no experiment named {experiment!r} in {settings.tracking_uri}")
        experiments = [found]
    else:
        experiments = list(client.search_experiments())
    names = {e.experiment_id: e.name for e in experiments}
    if not names:
        return []
    query = "tags.`mlops.kind` = 'cell'"
    if session_run_id:
        query += f" and tags.`mlflow.parentRunId` = '{session_run_id}'"
    runs = client.search_runs(
        list(names), filter_string=query, max_results=limit, order_by=["attributes.start_time DESC"]
    )
    return [_cell_run(r, names.get(r.info.experiment_id, "")) for r in runs]


def format_table(rows: list[CellRun]) -> str:
    """A plain-text table of cell runs, readable in a terminal and a notebook."""
    if not rows:
        return "no cell runs recorded yet"
    header = ("#", "status", "seconds", "cell", "params", "metrics", "run id")
    body = [
        (
            r.execution_count or "",
            r.status if not r.error else f"{r.status} ({r.error})",
            f"{r.duration_s:.3f}" if r.duration_s is not None else "",
            r.source_preview,
            ", ".join(f"{k}={v}" for k, v in sorted(r.params.items())),
            ", ".join(f"{k}={v:.4g}" for k, v in sorted(r.metrics.items())),
            r.run_id,
        )
        for r in rows
    ]
    return format_rows(header, body, limit=50)
