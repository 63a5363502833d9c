"""Gathers the facts of an audit from the registry, the runs and the project's state.

Only ``MlflowClient`` calls (through ``store.client``), so the embedded SQLite store and a
team's tracking server give the same report. Each piece that is missing (a run deleted, an
artifact unreadable) becomes a note in the report instead of an error.
"""

from __future__ import annotations

import datetime
import json
from typing import Any

from .. import store
from ..config import Settings
from ..exceptions import MlopsError, NotFoundError
from .analysis import analysis_of
from .facts import AuditFacts, GateVerdict, RequestFacts, RunFacts

#: tags every run repeats or that the report shows elsewhere (source, parity, signature)
_HIDDEN_TAGS = (
    "mlflow.log-model.history",
    "mlflow.runName",
    "mlflow.user",
    "mlflow.source.type",
    "mlflow.source.name",
    "mlflow.parentRunId",
    "mlflow.experimentKind",
    "mlops.source",
    "mlops.source_preview",
    "mlops.parity",
    "mlops.signature",
    "mlops.kind",
)
_TAG_TEXT = 600
_MAX_CELLS = 200
_MAX_MONITOR_RUNS = 100


def now_iso() -> str:
    moment = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    return moment.replace("+00:00", "Z")


def _get_run(client: Any, run_id: str | None) -> Any:
    from mlflow.exceptions import MlflowException

    if not run_id:
        return None
    try:
        return client.get_run(run_id)
    except MlflowException:
        return None


class _Experiments:
    """Experiment names by id, each looked up once."""

    def __init__(self, client: Any):
        self._client = client
        self._names: dict[str, str] = {}

    def name(self, experiment_id: str) -> str:
        if experiment_id not in self._names:
            try:
                self._names[experiment_id] = self._client.get_experiment(experiment_id).name
            except Exception:
                self._names[experiment_id] = experiment_id
        return self._names[experiment_id]


def _datasets(run: Any) -> list[dict[str, Any]]:
    inputs = getattr(run, "inputs", None)
    out = []
    for inp in getattr(inputs, "dataset_inputs", None) or []:
        rows = None
        try:
            rows = json.loads(inp.dataset.profile or "{}").get("num_rows")
        except (ValueError, AttributeError):
            pass
        context = next((t.value for t in inp.tags or [] if t.key == "mlflow.data.context"), "")
        out.append(
            {
                "name": inp.dataset.name,
                "digest": inp.dataset.digest,
                "rows": rows,
                "context": context,
                "source_type": getattr(inp.dataset, "source_type", "") or "",
            }
        )
    return out


def _source(client: Any, run: Any) -> str | None:
    """A cell's full source: its tag, or its ``cell_source.py`` artifact when it was long."""
    tags = run.data.tags
    if "mlops.source" in tags:
        return str(tags["mlops.source"])
    artifact = tags.get("mlops.source_artifact")
    if not artifact:
        return None
    import tempfile
    from pathlib import Path

    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = client.download_artifacts(run.info.run_id, artifact, tmp)
            return Path(path).read_text(encoding="utf-8")
    except Exception:
        return None


def run_facts(client: Any, run: Any, experiments: _Experiments) -> RunFacts:
    tags = dict(run.data.tags)
    error = None
    if tags.get("mlops.error_type"):
        error = f"{tags['mlops.error_type']}: {tags.get('mlops.error_message', '')}".strip()
    elif tags.get("mlops.error"):
        error = tags["mlops.error"]
    kind = tags.get("mlops.kind", "")
    shown = {
        k: v if len(v) <= _TAG_TEXT else v[: _TAG_TEXT - 1] + "…"
        for k, v in sorted(tags.items())
        if k not in _HIDDEN_TAGS and not k.startswith("mlops.version.")
    }
    return RunFacts(
        run_id=run.info.run_id,
        kind=kind,
        name=run.info.run_name or "",
        experiment=experiments.name(run.info.experiment_id),
        status=str(run.info.status),
        start_time=run.info.start_time,
        end_time=run.info.end_time,
        source_name=tags.get("mlflow.source.name", ""),
        params=dict(run.data.params),
        metrics={k: float(v) for k, v in run.data.metrics.items()},
        tags=shown,
        datasets=_datasets(run),
        source=_source(client, run) if kind == "cell" else None,
        execution_count=tags.get("mlops.execution_count"),
        error=error,
    )


def _children(client: Any, run: Any, kind: str, limit: int = _MAX_CELLS) -> list[Any]:
    return list(
        client.search_runs(
            [run.info.experiment_id],
            filter_string=(
                f"tags.`mlops.kind` = '{kind}' and tags.`mlflow.parentRunId` = '{run.info.run_id}'"
            ),
            max_results=limit,
            order_by=["attributes.start_time ASC"],
        )
    )


def _environment(runs: list[Any]) -> tuple[str | None, dict[str, str]]:
    commit = None
    env: dict[str, str] = {}
    for run in runs:
        tags = run.data.tags
        commit = commit or tags.get("mlflow.source.git.commit")
        if "mlops.python" in tags and "python" not in env:
            env["python"] = tags["mlops.python"]
        for key, value in tags.items():
            if key.startswith("mlops.version."):
                env.setdefault(key.removeprefix("mlops.version."), value)
    return commit, env


def _gates(version: Any) -> list[GateVerdict]:
    out = []
    for key, text in sorted((version.tags or {}).items()):
        if not key.startswith("mlops.gate."):
            continue
        try:
            data = json.loads(text)
        except ValueError:
            data = {"verdict": "unreadable", "gates": []}
        out.append(
            GateVerdict(
                key.removeprefix("mlops.gate."), str(data.get("verdict", "")), data["gates"]
            )
        )
    return out


def _deployments(settings: Settings, model: str, version: str) -> list[dict[str, Any]]:
    from ..serving.manager import deployments

    out = []
    for d in deployments(settings=settings):
        if d.model == model and version in {str(v) for v in (*d.versions, *d.weights)}:
            out.append(d.to_dict())  # to_dict leaves the bearer token out
    return out


def _monitoring(
    client: Any, settings: Settings, model: str, version: str
) -> tuple[list[Any], list[dict[str, Any]]]:
    """This version's monitor runs (newest first) and its alerts."""
    from ..monitoring.monitor import alerts

    found = client.get_experiment_by_name(f"monitor/{model}")
    runs: list[Any] = []
    if found is not None:
        quoted = version.replace("'", "")
        for run in client.search_runs(
            [found.experiment_id],
            filter_string=(
                f"tags.`mlops.kind` = 'monitor' and tags.`mlops.model_version` = '{quoted}'"
            ),
            max_results=_MAX_MONITOR_RUNS,
            order_by=["attributes.start_time DESC"],
        ):
            runs.append(run)
    mine = [
        a
        for a in alerts(settings=settings, limit=10_000)
        if a.get("model") == model and str(a.get("version")) == version
    ]
    return runs, mine


def _evaluations(
    client: Any, model: str, version: str, runs: list[Any], pipeline: RunFacts | None
) -> list[Any]:
    """Evaluation runs of this version: of its package run, of the pipeline run that made
    it, or naming the model and version in their tags (oldest first)."""
    ids = [e.experiment_id for e in client.search_experiments()]
    if not ids:
        return []

    def q(text: str) -> str:
        return text.replace("'", "")

    filters = [
        f"tags.`mlops.model_name` = '{q(model)}' and tags.`mlops.model_version` = '{q(version)}'"
    ]
    if runs:
        filters.append(f"tags.`mlops.evaluated_run_id` = '{q(runs[0].info.run_id)}'")
    if pipeline is not None:
        filters.append(f"tags.`mlops.pipeline_run_id` = '{q(pipeline.run_id)}'")
    seen = {r.info.run_id for r in runs}
    found: dict[str, Any] = {}
    for text in filters:
        for r in client.search_runs(ids, filter_string=text, max_results=100):
            kind = r.data.tags.get("mlops.kind")
            if r.info.run_id not in seen and kind not in ("monitor", "package"):
                found[r.info.run_id] = r
    return sorted(found.values(), key=lambda r: r.info.start_time or 0)


def _lineage(client: Any, facts: AuditFacts, package: Any, experiments: _Experiments) -> list[Any]:
    """Fill the chain from the package run back to its step or notebook session; the runs."""
    runs = [package]
    parent = _get_run(client, package.data.tags.get("mlflow.parentRunId"))
    if package.data.tags.get("mlflow.parentRunId") and parent is None:
        facts.notes.append("the package run's parent run is no longer in the store")
    if parent is None:
        return runs
    runs.append(parent)
    kind = parent.data.tags.get("mlops.kind", "")
    cells = _children(client, parent, "cell")
    cutoff = package.info.start_time or 0
    # the cells that ran before the model was packaged (the packaging cell included)
    facts.cells = [run_facts(client, c, experiments) for c in cells if c.info.start_time <= cutoff]
    if kind == "step":
        facts.origin = "pipeline"
        pipeline = _get_run(client, parent.data.tags.get("mlflow.parentRunId"))
        facts.steps = [run_facts(client, parent, experiments)]
        if pipeline is not None:
            runs.append(pipeline)
            facts.pipeline = run_facts(client, pipeline, experiments)
            steps = _children(client, pipeline, "step", limit=500)
            facts.steps = [run_facts(client, s, experiments) for s in steps]
            runs.extend(s for s in steps if s.info.run_id != parent.info.run_id)
    else:
        facts.origin = "notebook"
        facts.session = run_facts(client, parent, experiments)
    return runs


def collect(
    settings: Settings,
    model: str,
    version: str,
    alias: str | None = None,
    request: RequestFacts | None = None,
) -> AuditFacts:
    """The facts of ``model`` v``version`` (already checked to exist)."""
    from ..registry.service import history, require_model

    client = store.client(settings)
    registered = require_model(client, model)
    mv = client.get_model_version(model, version)
    aliases = {a: str(v) for a, v in (registered.aliases or {}).items()}
    subject = f"{model}@{alias}" if alias else f"{model}/{version}"
    facts = AuditFacts(
        generated=now_iso(),
        subject=subject,
        model=model,
        version=version,
        alias=alias,
        store="embedded SQLite store" if settings.is_embedded else "tracking server",
        version_status=str(mv.status),
        version_created=int(mv.creation_timestamp or 0) or None,
        version_source=str(mv.source or ""),
        version_aliases=sorted(a for a, v in aliases.items() if v == version),
        model_aliases=aliases,
        request=request,
    )
    try:
        facts.parity = json.loads((mv.tags or {}).get("mlops.parity", "{}"))
    except ValueError:
        facts.notes.append("the version's parity tag is not readable JSON")
    facts.gates = _gates(mv)
    facts.moves = [m.to_dict() for m in history(model, settings=settings)]
    experiments = _Experiments(client)
    package = _get_run(client, mv.run_id)
    runs: list[Any] = []
    if package is None:
        facts.notes.append(
            f"v{version} has no source run in the store (registered from {mv.source})"
        )
    else:
        facts.package = run_facts(client, package, experiments)
        runs = _lineage(client, facts, package, experiments)
    facts.lineage = _cell_lineage(settings, model, version, facts)
    facts.git_commit, facts.environment = _environment(runs)
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    chain = [facts.package, *facts.steps, facts.session, *facts.cells]
    for run in (r for r in chain if r is not None):
        for d in run.datasets:
            entry = seen.setdefault((d["name"], d["digest"]), {**d, "runs": []})
            label = (
                f"cell [{run.execution_count}]" if run.kind == "cell" else run.name or run.run_id
            )
            if label not in entry["runs"]:
                entry["runs"].append(label)
    facts.datasets = list(seen.values())
    facts.deployments = _deployments(settings, model, version)
    monitored, facts.alerts = _monitoring(client, settings, model, version)
    facts.monitoring = [run_facts(client, r, experiments) for r in monitored]
    evaluations = _evaluations(client, model, version, runs, facts.pipeline)
    # fairness and attributions over a monitored window count too, oldest first like the rest
    facts.analysis = analysis_of(client, [*runs, *evaluations, *monitored[::-1]], facts.notes)
    return facts


def _cell_lineage(
    settings: Settings, model: str, version: str, facts: AuditFacts
) -> dict[str, Any]:
    """The chain of cells behind the packaging cell, when its cells were tracked."""
    from ..registry.model_lineage import model_lineage

    if not facts.cells:
        return {}
    try:
        found = model_lineage(settings, f"{model}/{version}")
    except MlopsError as err:
        facts.notes.append(f"the cell lineage could not be read: {err}")
        return {}
    records = {r.record_id for r in found.runs}
    return {
        "cells": [c.run_id for c in facts.cells if c.tags.get("mlops.record_id") in records],
        "params": found.params,
        "files": found.files,
    }


def require_alias(client: Any, model: str, alias: str) -> str:
    """The version ``alias`` points at, or a NotFoundError naming the aliases there are."""
    from ..registry.service import alias_holder, require_model

    registered = require_model(client, model)
    holder = alias_holder(client, model, alias)
    if holder is None:
        known = ", ".join(f"{a} (v{v})" for a, v in sorted((registered.aliases or {}).items()))
        raise NotFoundError(f"model {model!r} has no alias {alias!r} (aliases: {known or 'none'})")
    return str(holder.version)
