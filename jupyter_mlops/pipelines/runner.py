"""``run_pipeline``: a pipeline run with one step run per notebook, as a DAG, cached,
in parallel, resumable. The one function behind the CLI, the magic and the Python API."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .. import store
from ..config import Settings, load_settings
from ..exceptions import MlopsError
from .cache import CacheEntry, CacheIndex, file_hash
from .executor import STEP_ENV_NOTEBOOK, STEP_ENV_RUN, StepFailure
from .executors import StepExecutor, StepTask, check_executor, make_executor
from .outputs import path_outputs, read_outputs, resolve_path
from .params import resolve_pipeline_params
from .resolve import resolve_step
from .run_tags import (
    json_tag,
    output_metrics,
    param_values,
    pipeline_tags,
    reuse_tags,
    step_status_tags,
    step_tags,
)
from .spec import PipelineSpec, load_pipeline

_OK = ("FINISHED", "CACHED", "REUSED")


@dataclass
class StepResult:
    """How one step went."""

    name: str
    status: str
    run_id: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    cache_key: str | None = None
    #: the run whose outputs a cached or resumed step reused
    reused_run_id: str | None = None
    notebook: str | None = None
    duration_s: float = 0.0
    error: StepFailure | None = None
    #: promotions the step's notebook saw refused by their gates (caught or not)
    refused: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in _OK


@dataclass
class PipelineResult:
    """A finished pipeline run, as every door renders it."""

    name: str
    run_id: str
    status: str
    params: dict[str, Any]
    steps: dict[str, StepResult]
    duration_s: float
    executed_dir: str
    warnings: list[str] = field(default_factory=list)
    #: a run answered from the cache alone: the journal record its run is written from
    #: (``run_id`` is empty until the writer has written it)
    record_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "FINISHED"

    def numeric_outputs(self) -> dict[str, float]:
        """Each step's number outputs as ``STEP.NAME``, in step order (what sweeps tabulate
        and searches optimise)."""
        return {
            f"{step.name}.{name}": float(value)
            for step in self.steps.values()
            for name, value in step.outputs.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)
        }

    def refusals(self) -> list[tuple[str, str]]:
        """(step, message) of each step whose notebook had a promotion refused by a gate."""
        return [(s.name, s.refused) for s in self.steps.values() if s.refused]

    def failed_step(self) -> StepResult | None:
        return next((s for s in self.steps.values() if s.status == "FAILED"), None)

    def error_message(self) -> str:
        step = self.failed_step()
        if step is None or step.error is None:
            return f"pipeline {self.name!r} {self.status}"
        skipped = [s.name for s in self.steps.values() if s.status == "SKIPPED"]
        detail = step.error.describe()
        if step.error.cell_index is None and f"step {step.name!r}" in detail:
            detail = detail.lstrip(": ")  # the message already names the step
        else:
            detail = f"step {step.name!r}{detail}"
        text = f"pipeline {self.name!r} failed: {detail}"
        if step.notebook:
            text += f"\nexecuted notebook: {step.notebook}"
        if skipped:
            text += f"\nskipped: {', '.join(skipped)}"
        text += f"\nresume with: jupyter mlops run ... --resume {self.run_id}"
        return text

    def summary(self) -> str:
        lines = [f"warning: {w}" for w in self.warnings]
        if self.run_id:
            lines.append(
                f"pipeline {self.name!r} run {self.run_id}: {self.status} "
                f"in {self.duration_s:.1f} s"
            )
        else:
            lines.append(
                f"pipeline {self.name!r}: {self.status} in {self.duration_s:.1f} s, every step "
                f"from the cache (its run is being recorded: record {self.record_id})"
            )
        for step in self.steps.values():
            note = ""
            if step.status in ("CACHED", "REUSED") and step.reused_run_id:
                note = f" (from run {step.reused_run_id})"
            if step.error:
                note = step.error.describe()
            outs = ", ".join(f"{k}={v}" for k, v in step.outputs.items())
            lines.append(f"  {step.name:<12} {step.status:<9} {step.duration_s:6.1f} s{note}")
            if outs:
                lines.append(f"  {'':<12} outputs: {outs[:300]}")
        for name, message in self.refusals():
            lines.append(f"gate refused in step {name!r}: {message}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class PipelineFailed(MlopsError):
    """A pipeline run ended FAILED; ``result`` holds every step's outcome."""

    def __init__(self, result: PipelineResult):
        super().__init__(result.error_message())
        self.result = result


class _Run:
    """State of one pipeline run while it executes."""

    def __init__(
        self,
        spec: PipelineSpec,
        params: dict[str, Any],
        settings: Settings,
        *,
        parallel: int,
        use_cache: bool,
        kernel_name: str | None,
        slots: threading.Semaphore,
        prior: dict[str, tuple[str, dict[str, Any]]],
        extra_tags: dict[str, str],
        executor: StepExecutor,
        step_env: dict[str, str] | None = None,
    ):
        self.spec = spec
        #: more environment for every step's kernel (a search trial's, for pruning)
        self.step_env = dict(step_env or {})
        self.params = params
        self.settings = settings
        self.parallel = parallel
        self.use_cache = use_cache
        self.kernel_name = kernel_name
        self.slots = slots
        self.prior = prior
        self.executor = executor
        self.client = store.client(settings)
        self.cache = CacheIndex(settings.state_dir / "cache")
        self.experiment_id = store.get_or_create_experiment(settings, spec.name)
        self.outputs: dict[str, dict[str, Any]] = {}
        self.results: dict[str, StepResult] = {}
        self.warnings: list[str] = []
        #: the step states last written by ``_show_progress``
        self._shown: dict[str, str] = {}
        tags = pipeline_tags(spec, params, settings, extra_tags)
        run = self.client.create_run(self.experiment_id, tags=tags, run_name=spec.name)
        self.run_id: str = run.info.run_id
        self._log_params(self.run_id, params)
        self.executed_dir = settings.state_dir / "pipelines" / self.run_id
        # at most `parallel` step kernels run at once, in a sweep as in a single pipeline
        self.thread_env = executor.thread_env(parallel)

    # -- one step ---------------------------------------------------------------------------
    def _start_step_run(self, name: str, key: str, values: dict[str, Any], **tags: str) -> str:
        run = self.client.create_run(
            self.experiment_id,
            tags={
                **step_tags(self.spec, name, key, self.settings),
                "mlflow.parentRunId": self.run_id,
                **tags,
            },
            run_name=name,
        )
        self._log_params(run.info.run_id, values)
        return str(run.info.run_id)

    def _log_params(self, run_id: str, values: dict[str, Any]) -> None:
        from mlflow.entities import Param

        params = [Param(k, v) for k, v in param_values(values).items()]
        for i in range(0, len(params), 100):
            self.client.log_batch(run_id, params=params[i : i + 100])

    def _finish_step_run(self, run_id: str, outputs: dict[str, Any], status: str) -> None:
        from mlflow.entities import Metric, RunTag

        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, 0) for k, v in output_metrics(outputs).items()]
        self.client.log_batch(
            run_id, metrics=metrics, tags=[RunTag("mlops.outputs", json_tag(outputs))]
        )
        self.client.set_terminated(run_id, status)

    def _reuse(
        self,
        name: str,
        key: str,
        values: dict[str, Any],
        source: str,
        how: str,
        outputs: dict[str, Any],
    ) -> StepResult:
        run_id = self._start_step_run(name, key, values, **reuse_tags(source))
        self._finish_step_run(run_id, outputs, "FINISHED")
        return StepResult(
            name=name,
            status=how,
            run_id=run_id,
            params=values,
            outputs=outputs,
            cache_key=key,
            reused_run_id=source,
            refused=self._refusals(source),
        )

    def _refusals(self, run_id: str) -> str | None:
        from mlflow.exceptions import MlflowException

        from ..registry.service import STEP_REFUSALS_TAG

        try:
            return self.client.get_run(run_id).data.tags.get(STEP_REFUSALS_TAG)
        except MlflowException:
            return None

    def run_step(self, name: str) -> StepResult:
        step = self.spec.steps[name]
        started = time.perf_counter()
        resolved = resolve_step(self.spec, name, self.params, self.outputs, self.settings)
        if resolved.warning:
            self.warnings.append(resolved.warning)
        values, key = resolved.values, resolved.key
        if name in self.prior:
            source, reused = self.prior[name]
            return self._reuse(name, key, values, source, "REUSED", reused)
        if self.use_cache and step.cache:
            entry = self.cache.get(key, self.settings.project_dir)
            if entry is not None:
                return self._reuse(name, key, values, entry.run_id, "CACHED", entry.outputs)

        run_id = self._start_step_run(name, key, values, **{"mlops.cache_hit": "false"})
        out_path = self.executed_dir / f"{name}.ipynb"
        with self.slots:
            task = StepTask(
                template=step.notebook,
                output=out_path,
                parameters=values,
                cwd=self.settings.project_dir,
                env={
                    STEP_ENV_RUN: run_id,
                    STEP_ENV_NOTEBOOK: str(step.notebook),
                    "JUPYTER_MLOPS_EXIT_FLUSH": "0",
                    **self.thread_env,
                    **self.step_env,
                },
                kernel_name=self.kernel_name,
                settings=self.settings,
            )
            failure = self.executor.run(task, self.parallel)
        outputs: dict[str, Any] = {}
        paths: set[str] = set()
        if out_path.is_file():
            import nbformat

            executed = nbformat.read(out_path, as_version=4)  # type: ignore[no-untyped-call]
            outputs, paths = read_outputs(executed), path_outputs(executed)
            self.client.log_artifact(run_id, str(out_path))
        if failure is None:
            missing = [o for o in step.outputs if o not in outputs]
            if missing:
                failure = StepFailure(
                    f"the notebook did not publish declared output(s) {missing}; call "
                    f"jupyter_mlops.output(name, value) in {step.notebook.name}"
                )
        status = "FAILED" if failure else "FINISHED"
        if failure:
            self.client.set_tag(run_id, "mlops.error", failure.describe().lstrip(": ")[:5000])
        self._finish_step_run(run_id, outputs, status)
        if failure is None and step.cache:
            self.cache.put(
                CacheEntry(
                    key=key,
                    step=name,
                    run_id=run_id,
                    outputs=outputs,
                    path_outputs=sorted(paths),
                    path_hashes={
                        p: file_hash(resolve_path(str(outputs[p]), self.settings.project_dir))
                        for p in paths
                        if resolve_path(str(outputs[p]), self.settings.project_dir).is_file()
                    },
                    notebook=str(out_path),
                )
            )
        return StepResult(
            name=name,
            status=status,
            run_id=run_id,
            params=values,
            outputs=outputs,
            cache_key=key,
            notebook=self.settings.relative(out_path),
            duration_s=time.perf_counter() - started,
            error=failure,
            refused=self._refusals(run_id),
        )

    def _safe_step(self, name: str) -> StepResult:
        try:
            return self.run_step(name)
        except MlopsError as err:
            return StepResult(name=name, status="FAILED", error=StepFailure(str(err)))

    # -- the DAG ----------------------------------------------------------------------------
    def execute(self, progress: bool) -> None:
        from tqdm.auto import tqdm

        pending = list(self.spec.order)
        running: dict[Future[StepResult], str] = {}
        started: dict[str, int] = {}
        bar = tqdm(total=len(pending), desc=self.spec.name, unit="step", disable=not progress)
        with ThreadPoolExecutor(max_workers=self.parallel) as pool:
            while pending or running:
                for name in list(pending):
                    needs = self.spec.steps[name].needs
                    if any(n in self.results and not self.results[n].ok for n in needs):
                        self.results[name] = StepResult(name=name, status="SKIPPED")
                        pending.remove(name)
                        bar.update(1)
                    elif all(n in self.results for n in needs):
                        running[pool.submit(self._safe_step, name)] = name
                        started[name] = int(time.time() * 1000)
                        pending.remove(name)
                self._show_progress(set(running.values()), started)
                if not running:
                    continue
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    name = running.pop(future)
                    result = future.result()
                    self.results[name] = result
                    if result.ok:
                        self.outputs[name] = result.outputs
                    bar.set_postfix_str(f"{name} {result.status.lower()}")
                    bar.update(1)
        bar.close()

    def _show_progress(self, running: set[str], started: dict[str, int]) -> None:
        """Each step's state so far on the pipeline run, for whoever watches it (the sidebar):
        done steps with their status and seconds, running ones with their start, the rest
        waiting. ``finish`` writes the final state; a store that refuses this write only
        delays what a watcher sees."""
        status = {
            n: self.results[n].status if n in self.results else
            "RUNNING" if n in running else "WAITING"
            for n in self.spec.order
        }  # fmt: skip
        durations = {n: r.duration_s for n, r in self.results.items()}
        tags = {
            **step_status_tags(self.spec, status, durations),
            "mlops.step_started": json_tag({n: started[n] for n in running}),
        }
        if tags == self._shown:
            return
        from mlflow.entities import RunTag

        try:
            self.client.log_batch(self.run_id, tags=[RunTag(k, v) for k, v in tags.items()])
            self._shown = tags
        except Exception:
            pass

    def finish(self, started: float) -> PipelineResult:
        from mlflow.entities import RunTag

        ordered = {n: self.results[n] for n in self.spec.order if n in self.results}
        ok = all(r.ok for r in ordered.values()) and len(ordered) == len(self.spec.steps)
        result = PipelineResult(
            name=self.spec.name,
            run_id=self.run_id,
            status="FINISHED" if ok else "FAILED",
            params=self.params,
            steps=ordered,
            duration_s=time.perf_counter() - started,
            executed_dir=self.settings.relative(self.executed_dir),
            warnings=self.warnings,
        )
        steps = step_status_tags(
            self.spec,
            {n: r.status for n, r in ordered.items()},
            {n: r.duration_s for n, r in ordered.items()},
        )
        tags = [RunTag(k, v) for k, v in steps.items()]
        failed = result.failed_step()
        if failed is not None:
            tags += [
                RunTag("mlops.failed_step", failed.name),
                RunTag("mlops.error", result.error_message()[:5000]),
            ]
        self.client.log_batch(self.run_id, tags=tags)
        self.client.log_dict(self.run_id, result.to_dict(), "pipeline_result.json")
        self.client.set_terminated(self.run_id, result.status)
        return result

    def fail(self, err: BaseException) -> None:
        self.client.set_tag(self.run_id, "mlops.error", str(err)[:5000])
        self.client.set_terminated(self.run_id, "FAILED")


def _prior_steps(settings: Settings, run_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Finished steps of an earlier pipeline run, and its params, for ``--resume``."""
    from mlflow.exceptions import MlflowException

    client = store.client(settings)
    try:
        run = client.get_run(run_id)
    except MlflowException:
        raise MlopsError(f"--resume {run_id}: no such run in {settings.tracking_uri}") from None
    if run.data.tags.get("mlops.kind") != "pipeline":
        raise MlopsError(f"--resume {run_id}: not a pipeline run")
    steps = client.search_runs(
        [run.info.experiment_id],
        filter_string=f"tags.`mlops.kind` = 'step' and tags.`mlflow.parentRunId` = '{run_id}'",
        max_results=1000,
    )
    prior = {}
    for s in steps:
        if s.info.status == "FINISHED":
            outputs = json.loads(s.data.tags.get("mlops.outputs", "{}"))
            source = s.data.tags.get("mlops.reused_run_id") or s.info.run_id
            prior[s.data.tags["mlops.step"]] = (source, outputs)
    params = json.loads(run.data.tags.get("mlops.pipeline_params", "{}"))
    return prior, params


def run_pipeline(
    pipeline: str | Path | PipelineSpec,
    params: dict[str, str] | None = None,
    *,
    parallel: int | None = None,
    use_cache: bool = True,
    resume: str | None = None,
    settings: Settings | None = None,
    progress: bool = True,
    kernel_name: str | None = None,
    slots: threading.Semaphore | None = None,
    tags: dict[str, str] | None = None,
    executor: str | StepExecutor = "local",
    scheduler: str | None = None,
    record_in_background: bool = False,
    step_env: dict[str, str] | None = None,
) -> PipelineResult:
    """Run a pipeline; raise ``PipelineFailed`` (with the result) when a step fails.

    ``params`` are ``-p k=v`` overrides as text, typed by the defaults in the spec.
    ``executor="dask"`` with a ``scheduler`` address runs the steps on a Dask cluster;
    ``parallel`` then defaults to the cluster's worker threads (else to 1).
    ``record_in_background``: when every step is a cache hit, answer from the cache index
    and let a writer process record the runs (the result's ``run_id`` is then empty and
    ``record_id`` names the journal record); what a short-lived command wants.

    >>> result = run_pipeline("templates/pipeline.yaml", {"epochs": "5"})  # doctest: +SKIP
    >>> result.steps["evaluate"].outputs["test_accuracy"]  # doctest: +SKIP
    0.96
    """
    if parallel is not None and parallel < 1:
        raise MlopsError(f"--parallel must be at least 1, got {parallel}")
    spec = pipeline if isinstance(pipeline, PipelineSpec) else load_pipeline(pipeline)
    if record_in_background and use_cache and not resume:
        from .from_cache import run_from_cache

        if isinstance(executor, str):
            check_executor(executor, scheduler)
        settings = settings or load_settings(spec.base_dir)
        extra = dict(tags or {})
        name = executor if isinstance(executor, str) else executor.name
        if name != "local":
            extra.setdefault("mlops.executor", name)
        cached = run_from_cache(spec, resolve_pipeline_params(spec, params or {}), settings, extra)
        if cached is not None:
            return cached
    if isinstance(executor, str):
        with contextlib.closing(make_executor(executor, scheduler)) as owned:
            return run_pipeline(
                spec,
                params,
                parallel=parallel,
                use_cache=use_cache,
                resume=resume,
                settings=settings,
                progress=progress,
                kernel_name=kernel_name,
                slots=slots,
                tags=tags,
                executor=owned,
                step_env=step_env,
            )
    parallel = parallel or executor.default_parallel()
    settings = settings or load_settings(spec.base_dir)
    prior: dict[str, Any] = {}
    base: dict[str, Any] = {}
    extra = dict(tags or {})
    if executor.name != "local":
        extra.setdefault("mlops.executor", executor.name)
    if resume:
        prior, base = _prior_steps(settings, resume)
        extra["mlops.resumed_from"] = resume
    overrides = {
        **{
            k: json.dumps(v) if isinstance(v, (list, dict)) else str(v)
            for k, v in base.items()
            if k in spec.params
        },
        **(params or {}),
    }
    values = resolve_pipeline_params(spec, overrides)
    started = time.perf_counter()
    run = _Run(
        spec,
        values,
        settings,
        parallel=parallel,
        use_cache=use_cache,
        kernel_name=kernel_name,
        slots=slots or threading.Semaphore(parallel),
        prior=prior,
        extra_tags=extra,
        executor=executor,
        step_env=step_env,
    )
    try:
        run.execute(progress)
    except BaseException as err:
        run.fail(err)
        raise
    result = run.finish(started)
    if not result.ok:
        raise PipelineFailed(result)
    return result
