"""``--search optuna``: trials chosen by Optuna, each a pipeline run, the study kept in the project.

Each trial asks Optuna for params from the space, runs the pipeline with them (a step whose
inputs did not change comes from the cache, so ingest runs once) and tells Optuna the
objective, an output of one of its steps. Trials run side by side through the same
executors as any pipeline. The study lives in ``.mlops/optuna.db`` (Optuna's RDB storage on
SQLite), so a search stopped midway resumes: ``--trials`` is the study's budget, and trials
left running by a killed search are marked failed and not counted. A trial that Optuna
prunes (``trial.py``) is recorded as pruned. The search itself is an MLflow run (kind
``search``) with the trials' pipeline runs nested under it, its best trial's run tagged
``mlops.best_trial``, and Optuna's own figures as an HTML artifact.
"""

from __future__ import annotations

import contextlib
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .. import store
from ..config import Settings, load_settings
from ..exceptions import MlopsError
from ..table import format_rows
from .executors import StepExecutor, make_executor
from .runner import PipelineFailed, PipelineResult, run_pipeline
from .search_space import (
    Dimension,
    SearchSpaceError,
    parse_objective,
    parse_space,
    parse_space_options,
)
from .spec import PipelineSpec, load_pipeline
from .trial import TrialLink, check_pruner, make_pruner

#: trials one search may be asked for
MAX_TRIALS = 10_000
REPORT_ARTIFACT = "search_report.html"


class SearchError(MlopsError):
    """A search that cannot go on; trials already told stay in the study."""


@dataclass
class TrialOutcome:
    number: int
    state: str
    params: dict[str, Any]
    value: float | None = None
    run_id: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SearchResult:
    """Every trial of the study (earlier searches' included), best first in ``best``."""

    study: str
    objective: str
    direction: str
    search_run_id: str
    trials: list[TrialOutcome]
    #: trials this call ran
    ran: int
    best: TrialOutcome | None = None
    space: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.best is not None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "trials": [t.to_dict() for t in self.trials]}

    def table(self) -> str:
        names = list(self.space)
        body = []
        for t in self.trials:
            mark = "*" if self.best is not None and t.number == self.best.number else ""
            body.append(
                [f"{t.number}{mark}", t.state.lower()]
                + [_show(t.params.get(n)) for n in names]
                + [_show(t.value), t.run_id or "", t.error or ""]
            )
        header = ("trial", "state", *names, self.objective, "run id", "why")
        lines = [format_rows(header, body)]
        if self.best is not None:
            lines.append(
                f"best: trial {self.best.number}, {self.objective} = {_show(self.best.value)} "
                f"({self.direction[:3]}), run {self.best.run_id}"
            )
        return "\n".join(lines)

    def best_command(self, pipeline: str) -> str | None:
        """The command that runs the whole pipeline with the best params (its trial's
        steps come from the cache; the rest, packaging and registering, run)."""
        if self.best is None:
            return None
        flags = " ".join(f"-p {k}={v}" for k, v in self.best.params.items())
        return f"jupyter mlops run {pipeline} {flags}"


def _show(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def objective_value(result: PipelineResult, metric: str) -> float | None:
    """The objective among the numeric outputs of the run's steps (``step.name`` or a name
    only one step gives)."""
    found = result.numeric_outputs()
    if metric in found:
        return found[metric]
    bare = [v for k, v in found.items() if k.split(".", 1)[1] == metric]
    return bare[0] if len(bare) == 1 else None


def _storage(settings: Settings) -> Any:
    import optuna

    db = settings.state_dir / "optuna.db"
    store.private_dir(db.parent)
    with contextlib.suppress(FileExistsError):
        db.touch(mode=store.PRIVATE_FILE, exist_ok=False)
    return optuna.storages.RDBStorage(
        f"sqlite:///{db.as_posix()}", engine_kwargs={"connect_args": {"timeout": 60}}
    )


def _outcome(trial: Any) -> TrialOutcome:
    state = trial.state.name
    return TrialOutcome(
        number=trial.number,
        state=state,
        params=dict(trial.params),
        value=trial.value if state == "COMPLETE" else None,
        run_id=trial.user_attrs.get("run_id"),
        error=trial.user_attrs.get("error"),
    )


def run_search(
    pipeline: str | Path | PipelineSpec,
    params: dict[str, str] | None = None,
    *,
    trials: int,
    objective: str,
    space: dict[str, Dimension] | None = None,
    study: str | None = None,
    pruner: str = "median",
    parallel: int | None = None,
    use_cache: bool = True,
    settings: Settings | None = None,
    progress: bool = True,
    kernel_name: str | None = None,
    executor: str | StepExecutor = "local",
    scheduler: str | None = None,
    seed: int | None = None,
) -> SearchResult:
    """Search the pipeline's params with Optuna until the study holds ``trials`` trials.

    >>> found = run_search("pipeline.yaml", trials=20, objective="acc:max")  # doctest: +SKIP
    >>> found.best.params  # doctest: +SKIP
    {'lr': 0.0123, 'hidden': 96}
    """
    if isinstance(executor, str):
        with contextlib.closing(make_executor(executor, scheduler)) as owned:
            return run_search(
                pipeline, params, trials=trials, objective=objective, space=space,
                study=study, pruner=pruner, parallel=parallel, use_cache=use_cache,
                settings=settings, progress=progress, kernel_name=kernel_name,
                executor=owned, seed=seed,
            )  # fmt: skip
    spec = pipeline if isinstance(pipeline, PipelineSpec) else load_pipeline(pipeline)
    dims = {**spec.search, **(space or {})}
    if not dims:
        raise SearchSpaceError(
            f"nothing to search in {spec.path.name}: give it a 'search:' mapping "
            "(lr: loguniform(1e-4, 1e-1)) or pass --space NAME=RANGE"
        )
    if isinstance(trials, bool) or not isinstance(trials, int) or not 1 <= trials <= MAX_TRIALS:
        raise SearchError(f"--trials must be a whole number from 1 to {MAX_TRIALS}, got {trials}")
    metric, direction = parse_objective(objective)
    check_pruner(pruner)
    overlap = sorted(set(dims) & set(params or {}))
    if overlap:
        raise SearchError(f"-p {overlap[0]} is also searched: give it either a value or a range")
    settings = settings or load_settings(spec.base_dir)
    name = study or spec.name

    import optuna

    from ..tracking.journal import FileLock

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    lock = FileLock(settings.state_dir / f"search-{name}.lock")
    if not lock.acquire(timeout=0):
        raise SearchError(f"study {name!r} is being searched by another process right now")
    try:
        return _search(
            spec, params or {}, dims, settings, name, metric, direction, trials, pruner,
            parallel or executor.default_parallel(), use_cache, progress, kernel_name,
            executor, seed,
        )  # fmt: skip
    finally:
        lock.release()


def _search(
    spec: PipelineSpec,
    params: dict[str, str],
    dims: dict[str, Dimension],
    settings: Settings,
    name: str,
    metric: str,
    direction: str,
    trials: int,
    pruner: str,
    parallel: int,
    use_cache: bool,
    progress: bool,
    kernel_name: str | None,
    executor: StepExecutor,
    seed: int | None,
) -> SearchResult:
    import optuna
    from mlflow.entities import RunTag

    storage = _storage(settings)
    # few trials: learn from the first third, not after Optuna's default of ten
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(2, min(10, trials // 3)))
    study = optuna.create_study(
        study_name=name, storage=storage, direction=direction,  # type: ignore[arg-type]
        load_if_exists=True,
        sampler=sampler, pruner=make_pruner(pruner),
    )  # fmt: skip
    if study.direction.name.lower() != direction:
        raise SearchError(
            f"study {name!r} was made to {study.direction.name.lower()} its objective; "
            f"use --study with a new name to {direction} instead"
        )
    known = study.user_attrs.get("objective")
    if known is not None and known != metric:
        raise SearchError(f"study {name!r} searches for {known}, not {metric}: use a new --study")
    study.set_user_attr("objective", metric)
    for stale in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        # we hold the study's lock: a running trial is a killed search's
        optuna.trial.Trial(study, stale._trial_id).set_user_attr("error", "interrupted")
        study.tell(stale.number, state=optuna.trial.TrialState.FAIL)

    def counted() -> int:
        return sum(
            1
            for t in study.get_trials(deepcopy=False)
            if t.state.is_finished() and t.user_attrs.get("error") != "interrupted"
        )

    remaining = max(0, trials - counted())
    client = store.client(settings)
    experiment = store.get_or_create_experiment(settings, spec.name)
    space_text = {k: d.describe() for k, d in dims.items()}
    search_run = client.create_run(
        experiment,
        run_name=f"search {name}",
        tags={
            "mlops.kind": "search",
            "mlops.study": name,
            "mlops.objective": f"{metric}:{direction[:3]}",
            "mlops.search_space": json.dumps(space_text),
        },
    ).info.run_id
    distributions = {k: d.to_optuna() for k, d in dims.items()}
    slots = threading.Semaphore(max(1, parallel))
    stop = threading.Event()
    problem: list[str] = []
    budget = threading.Semaphore(remaining)
    ran = [0]
    ran_lock = threading.Lock()

    def one() -> None:
        while not stop.is_set() and budget.acquire(blocking=False):
            trial = study.ask(distributions)
            with ran_lock:
                ran[0] += 1
            values = {k: str(v) for k, v in trial.params.items()}
            link = TrialLink(
                storage.url, name, trial._trial_id, trial.number, metric, pruner
            )  # fmt: skip
            try:
                result = run_pipeline(
                    spec, {**params, **values}, parallel=1, use_cache=use_cache,
                    settings=settings, progress=False, kernel_name=kernel_name, slots=slots,
                    tags={"mlops.study": name, "mlops.trial": str(trial.number),
                          "mlflow.parentRunId": search_run},
                    executor=executor, step_env=link.to_env(),
                )  # fmt: skip
            except PipelineFailed as failed:
                _tell_failed(study, trial, failed, client)
                continue
            except Exception as err:
                trial.set_user_attr("error", f"{type(err).__name__}: {err}"[:500])
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                continue
            trial.set_user_attr("run_id", result.run_id)
            value = objective_value(result, metric)
            if value is None:
                outputs = ", ".join(sorted(result.numeric_outputs())) or "none"
                problem.append(
                    f"objective {metric!r} is not a numeric output of any step of {spec.name} "
                    f"(outputs: {outputs})"
                )
                trial.set_user_attr("error", "no objective")
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                stop.set()
                continue
            study.tell(trial, value)
            if progress:
                print(f"trial {trial.number}: {metric} = {value:.4g} {values}", flush=True)

    try:
        with ThreadPoolExecutor(max_workers=max(1, min(parallel, remaining or 1))) as pool:
            for future in [pool.submit(one) for _ in range(max(1, min(parallel, remaining)))]:
                future.result()
    except BaseException:
        client.set_terminated(search_run, "KILLED")
        raise
    outcomes = [_outcome(t) for t in study.get_trials(deepcopy=False)]
    best = None
    with contextlib.suppress(ValueError):  # no complete trial yet
        best = _outcome(study.best_trial)
    tags = [RunTag("mlops.trials", str(len(outcomes)))]
    if best is not None and best.run_id:
        previous = study.user_attrs.get("best_run_id")
        if previous and previous != best.run_id:
            with contextlib.suppress(Exception):
                client.delete_tag(previous, "mlops.best_trial")
        client.set_tag(best.run_id, "mlops.best_trial", "true")
        study.set_user_attr("best_run_id", best.run_id)
        tags += [RunTag("mlops.best_run_id", best.run_id),
                 RunTag("mlops.best_params", json.dumps(best.params))]  # fmt: skip
        client.log_metric(search_run, f"best_{metric}", float(best.value or 0.0))
    client.log_batch(search_run, tags=tags)
    _log_report(client, search_run, study)
    client.set_terminated(search_run, "FAILED" if problem or best is None else "FINISHED")
    result = SearchResult(
        study=name, objective=metric, direction=direction, search_run_id=search_run,
        trials=outcomes, ran=ran[0], best=best, space=space_text,
    )  # fmt: skip
    if problem:
        raise SearchError(problem[0])
    return result


def _tell_failed(study: Any, trial: Any, failed: PipelineFailed, client: Any) -> None:
    """A failed pipeline: pruned when a step stopped on ``TrialPruned``, else failed."""
    import optuna

    result = failed.result
    trial.set_user_attr("run_id", result.run_id)
    step = result.failed_step()
    pruned = step is not None and step.error is not None and step.error.ename == "TrialPruned"
    if pruned:
        trial.set_user_attr("error", f"pruned in step {step.name}")  # type: ignore[union-attr]
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        # stopped on purpose: MLflow's KILLED, not FAILED
        client.set_tag(result.run_id, "mlops.trial_state", "PRUNED")
        client.set_terminated(result.run_id, "KILLED")
        return
    trial.set_user_attr("error", str(failed)[:500])
    study.tell(trial, state=optuna.trial.TrialState.FAIL)


def _log_report(client: Any, run_id: str, study: Any) -> None:
    """Optuna's optimisation history and param importances, one page that needs no network."""
    import optuna.visualization as vis
    import plotly.io as pio

    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    if not complete:
        return
    figures = [vis.plot_optimization_history(study)]
    if len(complete) >= 2:
        with contextlib.suppress(Exception):  # importances need varied params
            figures.append(vis.plot_param_importances(study))
    parts = [
        pio.to_html(f, full_html=False, include_plotlyjs=i == 0) for i, f in enumerate(figures)
    ]
    page = "<html><head><meta charset='utf-8'></head><body>" + "".join(parts) + "</body></html>"
    client.log_text(run_id, page, REPORT_ARTIFACT)


def search(
    pipeline: str | Path | PipelineSpec,
    *,
    trials: int,
    objective: str,
    space: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
    **options: Any,
) -> SearchResult:
    """Search a pipeline's params with Optuna; ``space`` as in ``pipeline.yaml``'s
    ``search:`` (ranges as text, choices as lists), on top of the file's own.

    >>> jupyter_mlops.search("pipeline.yaml", trials=12, objective="test_accuracy:max",
    ...                      space={"lr": "loguniform(1e-4, 1e-1)"})  # doctest: +SKIP
    """
    spec = pipeline if isinstance(pipeline, PipelineSpec) else load_pipeline(pipeline)
    dims = parse_space(space, spec.params) if space else None
    overrides = {k: str(v) for k, v in (params or {}).items()}
    return run_search(spec, overrides, trials=trials, objective=objective, space=dims, **options)


def search_from_options(
    pipeline: str, params: dict[str, str], space: list[str], **options: Any
) -> SearchResult:
    """What ``--search optuna`` on the command line and in ``%mlops run`` does."""
    spec = load_pipeline(pipeline)
    return run_search(spec, params, space=parse_space_options(space, spec.params), **options)
