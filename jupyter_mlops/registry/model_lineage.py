"""Lineage of a registered model: the cell runs behind the cell that packaged it.

A version's run is its package run; that run names the cell run that called ``package()``
(``mlops.cell_record_id``) and its parent, the notebook session or pipeline step whose
cells were tracked. The cells of that parent, from the store and from journals not yet
written, give the same chain a name's lineage walks in the kernel.
"""

from __future__ import annotations

from typing import Any

from .. import store
from ..config import Settings
from ..exceptions import NotFoundError
from ..tracking.lineage import Lineage, chain
from ..tracking.queries import pending_flows, run_flow
from ..tracking.stale import FlowRun, project_files

_MAX_CELLS = 5000


def session_cells(
    client: Any, experiment_id: str, parent_id: str
) -> list[tuple[FlowRun | None, Any]]:
    """The cell runs under a session or step run, oldest first, each with its dataflow."""
    out: list[Any] = []
    token = None
    while len(out) < _MAX_CELLS:
        page = client.search_runs(
            [experiment_id],
            filter_string=(
                f"tags.`mlops.kind` = 'cell' and tags.`mlflow.parentRunId` = '{parent_id}'"
            ),
            max_results=1000,
            order_by=["attributes.start_time ASC"],
            page_token=token,
        )
        out.extend(page)
        token = page.token
        if not token:
            break
    return [(run_flow(r), r) for r in out]


def model_lineage(settings: Settings, spec: str) -> Lineage:
    """The lineage of ``MODEL@ALIAS`` or ``MODEL/VERSION``; a clear error when the version
    was not packaged from a tracked cell."""
    from ..serving.manager import resolve_version

    model, version, _ = resolve_version(settings, spec)
    client = store.client(settings)
    mv = client.get_model_version(model, version)
    try:
        package = client.get_run(mv.run_id) if mv.run_id else None
    except Exception:
        package = None
    if package is None:
        raise NotFoundError(
            f"{spec} (v{version}) has no package run in this store (registered from "
            f"{mv.source}); its lineage is unknown"
        )
    tags = package.data.tags
    record_id = tags.get("mlops.cell_record_id")
    parent_id = tags.get("mlflow.parentRunId")
    if not record_id or not parent_id:
        raise NotFoundError(
            f"{spec} (v{version}) was not packaged from a tracked cell, so no cell lineage "
            "was recorded; package it in a notebook after %load_ext jupyter_mlops"
        )
    flows = [f for f, _ in session_cells(client, package.info.experiment_id, parent_id)]
    seen = {f.record_id for f in flows if f is not None}
    flows += [f for f in pending_flows(settings, parent_id) if f.record_id not in seen]
    runs = [f for f in flows if f is not None]
    if record_id not in {r.record_id for r in runs}:
        raise NotFoundError(
            f"the cell run that packaged {spec} (v{version}) is not in the store yet; run "
            "jupyter mlops flush, then ask again"
        )
    return chain(runs, record_id, spec, project_files(settings))
