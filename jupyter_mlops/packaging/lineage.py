"""Where a packaged model comes from: the running pipeline step, or this kernel's session."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from .. import store
from ..config import Settings
from ..tracking.session import INTERACTIVE_EXPERIMENT


@dataclass
class Lineage:
    experiment_id: str
    parent_run_id: str | None
    notebook: str | None
    cell_record_id: str | None
    params: dict[str, Any]
    metrics: dict[str, float]
    datasets: list[dict[str, Any]]


def lineage_of(settings: Settings) -> Lineage:
    """Where the model comes from: the running step, or this kernel's tracked session."""
    from ..tracking import api

    client = store.client(settings)
    params: dict[str, Any] = {}
    metrics: dict[str, float] = {}
    datasets: list[dict[str, Any]] = []
    record_id = None
    notebook = None
    session = api.active_session()
    if session is not None:
        for record in session.recorder.recent:
            params.update(record.get("params") or {})
            for name, value, *_ in record.get("metrics") or []:
                metrics[name] = value
            datasets.extend(record.get("datasets") or [])
        record_id = session.recorder.current_record_id
        notebook = settings.relative(session.notebook) if session.notebook else None
    step_run = os.environ.get("JUPYTER_MLOPS_SESSION_RUN_ID")
    if step_run:
        run = client.get_run(step_run)
        params = {**run.data.params, **params}
        return Lineage(
            run.info.experiment_id, step_run, notebook, record_id, params, metrics, datasets
        )
    if session is not None:
        session.flush(timeout=30)  # learn the session run's id
        if session.drainer.session_run_id and session.drainer.experiment_id:
            return Lineage(
                session.drainer.experiment_id,
                session.drainer.session_run_id,
                notebook,
                record_id,
                params,
                metrics,
                datasets,
            )
    experiment = store.get_or_create_experiment(settings, INTERACTIVE_EXPERIMENT)
    return Lineage(experiment, None, notebook, record_id, params, metrics, datasets)
