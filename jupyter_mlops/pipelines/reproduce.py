"""Run a recorded run again and say whether its metrics came out the same.

A pipeline run is re-executed from its pipeline file with its recorded params and no cache,
from its recorded commit: in place when the tree is at that commit, else in a temporary
worktree of it whose runs go to this project's store. A cell run is re-executed as the chain
of cell runs its value came from (its lineage), from their recorded source, in a fresh
kernel in the project, nested under a ``reproduce`` run. Either way each metric of the
original is compared with the new one within a tolerance.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .. import store
from ..config import Settings, load_settings
from ..exceptions import MlopsError, NotFoundError, UsageError
from ..vcs import changed_files, commit_exists, git_commit, repo_root, worktree

#: relative tolerance, against max(1, |original|)
DEFAULT_TOLERANCE = 1e-6
_STORE_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "JUPYTER_MLOPS_ARTIFACT_ROOT")


@dataclass
class MetricDiff:
    name: str
    original: float | None
    reproduced: float | None
    same: bool

    @property
    def difference(self) -> float | None:
        if self.original is None or self.reproduced is None:
            return None
        return self.reproduced - self.original


@dataclass
class Reproduction:
    """What a reproduction ran and how its metrics compare."""

    run_id: str
    kind: str
    new_run_id: str | None
    where: str
    tolerance: float
    diffs: list[MetricDiff] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def same(self) -> bool:
        return all(d.same for d in self.diffs)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "same": self.same}

    def summary(self) -> str:
        lines = [
            f"reproduced {self.kind} run {self.run_id} {self.where}: new run {self.new_run_id}"
        ]
        lines += [f"note: {n}" for n in self.notes]
        if not self.diffs:
            lines.append("the original run has no metrics to compare")
        width = max((len(d.name) for d in self.diffs), default=0)
        for d in self.diffs:
            mark = "same" if d.same else "DIFFERS"
            if d.reproduced is None:
                text = "missing in the reproduction"
            elif d.original is None:
                text = "not in the original"
            else:
                text = f"{d.original:.6g} -> {d.reproduced:.6g} ({d.difference:+.3g})"
            lines.append(f"  {d.name:<{width}}  {mark:<7}  {text}")
        verdict = "every metric matches" if self.same else "metrics differ"
        lines.append(f"{verdict} (tolerance {self.tolerance:g})")
        return "\n".join(lines)


def _same(a: float, b: float, tolerance: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= tolerance * max(1.0, abs(a))


def compare(
    original: dict[str, float], reproduced: dict[str, float], tolerance: float
) -> list[MetricDiff]:
    """Every metric of the original against the reproduction (missing ones differ)."""
    out = []
    for name in sorted(original):
        a, b = original[name], reproduced.get(name)
        out.append(MetricDiff(name, a, b, b is not None and _same(a, b, tolerance)))
    return out


def _metrics(run: Any) -> dict[str, float]:
    return {k: float(v) for k, v in run.data.metrics.items() if not k.startswith("mlops.")}


def reproduce(
    run_id: str,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    settings: Settings | None = None,
    progress: bool = False,
) -> Reproduction:
    """Run ``run_id`` (a pipeline or cell run) again and compare its metrics.

    >>> jupyter_mlops.reproduce("3f2a…").same  # doctest: +SKIP
    True
    """
    if not (tolerance >= 0 and math.isfinite(tolerance)):
        raise UsageError(f"--tolerance must be a number >= 0, got {tolerance}")
    settings = settings or load_settings()
    client = store.client(settings)
    run = _get_run(client, run_id)
    kind = run.data.tags.get("mlops.kind", "")
    if kind == "pipeline":
        return _pipeline(settings, client, run, tolerance, progress)
    if kind == "cell":
        return _cell(settings, client, run, tolerance)
    raise UsageError(
        f"run {run_id} is a {kind or 'plain MLflow'} run; reproduce takes a pipeline run or a "
        "cell run"
    )


def _get_run(client: Any, run_id: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_run(run_id)
    except MlflowException:
        raise NotFoundError(f"no run {run_id!r} in this project's store") from None


# -- pipelines ------------------------------------------------------------------------------
def _steps(client: Any, run: Any) -> dict[str, Any]:
    found = client.search_runs(
        [run.info.experiment_id],
        filter_string=(
            f"tags.`mlops.kind` = 'step' and tags.`mlflow.parentRunId` = '{run.info.run_id}'"
        ),
        max_results=1000,
    )
    return {s.data.tags.get("mlops.step", s.info.run_id): s for s in found}


def _step_metrics(client: Any, run: Any) -> dict[str, float]:
    return {
        f"{step}.{name}": value
        for step, s in _steps(client, run).items()
        for name, value in _metrics(s).items()
    }


@contextlib.contextmanager
def _store_env(settings: Settings) -> Iterator[None]:
    """Point processes started meanwhile (step kernels, writers) at this project's store."""
    before = {k: os.environ.get(k) for k in _STORE_ENV}
    os.environ["MLFLOW_TRACKING_URI"] = settings.tracking_uri
    os.environ["MLFLOW_REGISTRY_URI"] = settings.registry_uri
    os.environ["JUPYTER_MLOPS_ARTIFACT_ROOT"] = str(settings.artifact_root)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _pipeline(
    settings: Settings, client: Any, run: Any, tolerance: float, progress: bool
) -> Reproduction:
    from ..tracking.drainer import drain_orphans
    from .runner import PipelineFailed, run_pipeline

    tags = run.data.tags
    run_id = run.info.run_id
    relative = tags.get("mlops.pipeline_file")
    if not relative:
        raise UsageError(f"pipeline run {run_id} has no recorded pipeline file to run again")
    params = json.loads(tags.get("mlops.pipeline_params") or "{}")
    overrides = {
        k: json.dumps(v) if isinstance(v, (list, dict)) else str(v) for k, v in params.items()
    }
    commit = tags.get("mlflow.source.git.commit")
    project = settings.project_dir
    notes = []
    if tags.get("mlops.git_dirty") == "true":
        notes.append(
            f"the original ran with uncommitted changes on top of {commit[:12] if commit else '?'}"
            "; what they were is not recorded"
        )
    root = repo_root(project)
    if commit and root is None:
        raise UsageError(
            f"run {run_id} was made from git commit {commit[:12]}, but {project} is not in a "
            "git repository now"
        )
    if commit and not commit_exists(project, commit):
        raise UsageError(
            f"run {run_id} was made from commit {commit[:12]}, which no longer exists in this "
            "repository (rebased away, or made in another clone); fetch it and try again"
        )
    dirty = changed_files(project) if root is not None else []
    if dirty:
        shown = ", ".join(dirty[:5]) + (f" (+{len(dirty) - 5} more)" if len(dirty) > 5 else "")
        raise UsageError(
            f"the working tree has uncommitted changes ({shown}); commit or stash them first, "
            "so the reproduction runs recorded code only"
        )
    if not commit:
        notes.append("no git commit was recorded; ran the pipeline as it is now")
    extra = {"mlops.reproduces": run_id}

    def execute(pipeline_file: Path, run_settings: Settings) -> Any:
        if not pipeline_file.is_file():
            raise UsageError(f"pipeline file {relative} is not in the tree it was recorded from")
        try:
            return run_pipeline(
                pipeline_file,
                overrides,
                use_cache=False,
                settings=run_settings,
                progress=progress,
                tags=extra,
            )
        except PipelineFailed as err:
            raise MlopsError(f"the reproduction failed: {err}") from None

    if commit is None or git_commit(project) == commit:
        where = "in place" + (f" at commit {commit[:12]}" if commit else "")
        result = execute(project / relative, settings)
    else:
        assert root is not None
        where = f"in a temporary worktree of commit {commit[:12]}"
        inside = project.resolve().relative_to(root.resolve())
        with worktree(project, commit) as tree, _store_env(settings):
            run_settings = load_settings(tree / inside)
            result = execute(tree / inside / relative, run_settings)
            # the step kernels' writers finish before their journals go with the worktree
            drain_orphans(run_settings, wait=120)
    new = client.get_run(result.run_id)
    diffs = compare(
        {**_metrics(run), **_step_metrics(client, run)},
        {**_metrics(new), **_step_metrics(client, new)},
        tolerance,
    )
    return Reproduction(run_id, "pipeline", result.run_id, where, tolerance, diffs, notes)


# -- cells ----------------------------------------------------------------------------------
def _source(client: Any, run: Any) -> str:
    tags = run.data.tags
    if "mlops.source" in tags:
        return str(tags["mlops.source"])
    if tags.get("mlops.source_artifact"):
        with tempfile.TemporaryDirectory() as tmp:
            path = client.download_artifacts(run.info.run_id, tags["mlops.source_artifact"], tmp)
            return Path(path).read_text(encoding="utf-8")
    raise UsageError(
        f"cell run {run.info.run_id} has no recorded source (no mlops.source tag or source "
        "artifact), so it cannot be run again"
    )


def _cell(settings: Settings, client: Any, run: Any, tolerance: float) -> Reproduction:
    import nbformat

    from ..registry.model_lineage import session_cells
    from ..tracking.lineage import chain
    from ..tracking.stale import project_files
    from .executor import STEP_ENV_RUN, execute_step_notebook

    tags = run.data.tags
    run_id = run.info.run_id
    record_id = tags.get("mlops.record_id")
    parent = tags.get("mlflow.parentRunId")
    if not record_id or not parent:
        raise UsageError(f"cell run {run_id} has no record id or session: not a tracked cell")
    cells = session_cells(client, run.info.experiment_id, parent)
    flows = [f for f in (c[0] for c in cells) if f is not None]
    found = chain(flows, record_id, f"run {run_id}", project_files(settings))
    by_record = {f.record_id: r for f, r in cells if f is not None}
    notes = []
    if found.unknown:
        notes.append(
            f"{len(found.unknown)} earlier cell(s) ran code whose dataflow cannot be read; "
            "they are not part of the chain"
        )
    if found.missing:
        raise UsageError(
            f"{len(found.missing)} cell run(s) that run {run_id} read from are no longer in "
            "the store, so its chain cannot be run again"
        )
    sources = [_source(client, by_record[f.record_id]) for f in found.runs]
    nb = nbformat.v4.new_notebook(  # type: ignore[no-untyped-call]
        cells=[
            nbformat.v4.new_code_cell("%load_ext jupyter_mlops"),  # type: ignore[no-untyped-call]
            *(nbformat.v4.new_code_cell(s) for s in sources),  # type: ignore[no-untyped-call]
        ],
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
    )
    repro = client.create_run(
        run.info.experiment_id,
        run_name=f"reproduce {tags.get('mlflow.runName') or run_id}",
        tags={"mlops.kind": "reproduce", "mlops.reproduces": run_id},
    )
    new_id = repro.info.run_id
    folder = settings.state_dir / "reproduce"
    folder.mkdir(parents=True, exist_ok=True)
    template = folder / f"{run_id}.ipynb"
    nbformat.write(nb, str(template))  # type: ignore[no-untyped-call]
    failure = execute_step_notebook(
        template,
        folder / f"{run_id}.executed.ipynb",
        {},
        cwd=settings.project_dir,
        env={STEP_ENV_RUN: new_id},
    )
    if failure is not None:
        client.set_terminated(new_id, "FAILED")
        raise MlopsError(f"the reproduction failed{failure.describe()}")
    target = _reproduced_target(settings, client, run, new_id, len(sources))
    client.set_terminated(new_id, "FINISHED")
    diffs = compare(_metrics(run), _metrics(target), tolerance)
    where = f"as a chain of {len(sources)} cell(s) in a fresh kernel"
    return Reproduction(run_id, "cell", target.info.run_id, where, tolerance, diffs, notes)


def _reproduced_target(
    settings: Settings, client: Any, run: Any, session_run_id: str, count: int
) -> Any:
    """The new cell run of the chain's last cell, once the writer has written it."""
    from ..tracking.drainer import drain_orphans

    deadline = time.monotonic() + 120
    while True:
        drain_orphans(settings, wait=30)
        found = client.search_runs(
            [run.info.experiment_id],
            filter_string=(
                f"tags.`mlops.kind` = 'cell' and tags.`mlflow.parentRunId` = '{session_run_id}'"
            ),
            max_results=1000,
            order_by=["attributes.start_time ASC"],
        )
        if len(found) >= count:
            return found[-1]
        if time.monotonic() > deadline:
            raise MlopsError(
                f"the reproduction ran, but its cell runs did not reach the store in time "
                f"({len(found)} of {count}); see jupyter mlops flush"
            )
        time.sleep(0.5)
