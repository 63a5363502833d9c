"""``jupyter mlops ...``: parse options, call a service function, print, exit non-zero on error."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from . import help_text
from .config import load_settings
from .exceptions import MlopsError

if TYPE_CHECKING:
    from .team.server import TeamServer

F = TypeVar("F", bound=Callable[..., Any])


def _errors_to_exit(func: F) -> F:
    """An error becomes one line on stderr and exit status 1 (a traceback only with
    ``JUPYTER_MLOPS_DEBUG=1``)."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except MlopsError as err:
            click.echo(f"error: {err}", err=True)
            sys.exit(1)
        except (click.exceptions.Exit, click.ClickException, KeyboardInterrupt):
            raise
        except Exception as err:
            if os.environ.get("JUPYTER_MLOPS_DEBUG"):
                raise
            lines = str(err).strip().splitlines()
            click.echo(f"error: {type(err).__name__}: {lines[0] if lines else ''}", err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


def _needs_store(func: F) -> F:
    """The store's scheme is known and its server answers, before the command waits on it."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from .store_check import check_reachable

        check_reachable(load_settings())
        return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="jupyter-mlops")
def main() -> None:
    """jupyter-mlops: track, run, package, register, deploy and monitor from notebooks."""
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")


@main.command()
@click.option("--wait", default=30.0, show_default=True, help="Seconds to wait for a busy journal.")
@_errors_to_exit
def flush(wait: float) -> None:
    from .store_check import check_reachable
    from .tracking.drainer import drain_orphans, pending_records

    settings = load_settings()
    # MLflow's HTTP client would retry a dead server for minutes; --wait bounds the command
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(max(1, min(int(wait), 10))))
    try:
        check_reachable(settings, timeout=min(max(wait, 0.5), 5.0))
    except MlopsError as err:
        raise MlopsError(f"{err}; {pending_records(settings)} records stay queued") from None
    summary = drain_orphans(settings, wait=wait)
    left = pending_records(settings)
    click.echo(
        f"wrote {summary.applied} records to {settings.tracking_uri}; "
        f"{summary.journals_done} journals finished, {left} records still queued"
    )
    for sid, message in summary.failed.items():
        click.echo(f"journal {sid}: {message}", err=True)
    if summary.failed:
        sys.exit(1)


flush.help = help_text.DRAIN


@main.command()
@click.option("-n", "limit", default=20, show_default=True, help="How many runs.")
@click.option("--experiment", default=None, help="Only this experiment (a notebook path).")
@_errors_to_exit
@_needs_store
def runs(limit: int, experiment: str | None) -> None:
    from .tracking.queries import cell_runs, format_table

    if limit < 1:
        raise click.BadParameter("must be at least 1", param_hint="-n")
    click.echo(format_table(cell_runs(load_settings(), experiment=experiment, limit=limit)))


runs.help = help_text.RUNS


@main.command()
@_errors_to_exit
def status() -> None:
    from .tracking.drainer import pending_records
    from .tracking.journal import journals

    settings = load_settings()
    click.echo(f"project:  {settings.project_dir}")
    click.echo(f"store:    {settings.tracking_uri}")
    click.echo(f"registry: {settings.registry_uri}")
    click.echo(f"journals: {len(list(journals(settings.journal_dir)))}")
    click.echo(f"queued:   {pending_records(settings)} records")


status.help = help_text.STATUS


@main.command()
@_errors_to_exit
def ui() -> None:
    from .store import ui_command

    click.echo(ui_command(load_settings()))


ui.help = help_text.UI


def _pairs(items: tuple[str, ...], option: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected name=value, got {item!r}", param_hint=option)
        out[key] = value
    return out


EXECUTOR = "Where steps run: local kernels, or a dask.distributed cluster (extra [dask])."
SCHEDULER = "Dask scheduler address for --executor dask, e.g. tcp://10.0.0.5:8786."


@main.command()
@click.argument("pipeline", type=click.Path(dir_okay=False))
@click.option("-p", "--param", "params", multiple=True, metavar="NAME=VALUE", help=help_text.PARAM)
@click.option(
    "--parallel",
    default=None,
    type=click.IntRange(min=1),
    help=help_text.PARALLEL + " Default: 1, or the Dask cluster's worker threads.",
)
@click.option("--no-cache", is_flag=True, help=help_text.NO_CACHE)
@click.option("--resume", default=None, metavar="RUN_ID", help=help_text.RESUME)
@click.option("--sweep", multiple=True, metavar="NAME=V1,V2", help=help_text.SWEEP)
@click.option("--search", type=click.Choice(["optuna"]), default=None, help=help_text.SEARCH)
@click.option("--trials", type=click.IntRange(1, 10_000), default=None, help=help_text.TRIALS)
@click.option("--objective", default=None, metavar="METRIC:max|min", help=help_text.OBJECTIVE)
@click.option("--space", multiple=True, metavar="NAME=RANGE", help=help_text.SPACE)
@click.option("--study", default=None, help=help_text.STUDY)
@click.option("--pruner", default="median", show_default=True, help=help_text.PRUNER)
@click.option("--kernel", default=None, help="Kernel to run the notebooks with (default: theirs).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--fail-on-refusal", is_flag=True, help=help_text.FAIL_ON_REFUSAL)
@click.option("--executor", default="local", show_default=True, metavar="local|dask", help=EXECUTOR)
@click.option("--scheduler", default=None, metavar="ADDRESS", help=SCHEDULER)
@_errors_to_exit
@_needs_store
def run(
    pipeline: str,
    params: tuple[str, ...],
    parallel: int | None,
    no_cache: bool,
    resume: str | None,
    sweep: tuple[str, ...],
    search: str | None,
    trials: int | None,
    objective: str | None,
    space: tuple[str, ...],
    study: str | None,
    pruner: str,
    kernel: str | None,
    quiet: bool,
    fail_on_refusal: bool,
    executor: str,
    scheduler: str | None,
) -> None:
    from .pipelines.runner import run_pipeline
    from .pipelines.sweep import parse_sweep, run_sweep

    overrides = _pairs(params, "-p")
    if search is None and (trials or objective or space or study):
        raise click.UsageError("--trials, --objective, --space and --study go with --search optuna")
    if fail_on_refusal and (search or sweep):
        raise click.UsageError("--fail-on-refusal goes with a single pipeline run")
    if search:
        from .pipelines.search import search_from_options

        if sweep or resume:
            raise click.UsageError("--search cannot be combined with --sweep or --resume")
        if trials is None or objective is None:
            raise click.UsageError("--search optuna needs --trials N and --objective METRIC:max")
        found = search_from_options(
            pipeline, overrides, list(space), trials=trials, objective=objective,
            study=study, pruner=pruner, parallel=parallel, use_cache=not no_cache,
            progress=not quiet, kernel_name=kernel, executor=executor, scheduler=scheduler,
        )  # fmt: skip
        click.echo(found.table())
        best = found.best_command(pipeline)
        if best:
            click.echo(f"register the best: {best}")
        return
    if sweep:
        if resume:
            raise click.BadParameter("cannot be combined with --sweep", param_hint="--resume")
        result = run_sweep(
            pipeline,
            overrides,
            parse_sweep(list(sweep)),
            parallel=parallel,
            use_cache=not no_cache,
            progress=not quiet,
            kernel_name=kernel,
            executor=executor,
            scheduler=scheduler,
        )
        click.echo(result.table())
        for failure in result.failures:
            click.echo(f"error: {failure}", err=True)
        if not result.ok:
            sys.exit(1)
        return
    outcome = run_pipeline(
        pipeline,
        overrides,
        parallel=parallel,
        use_cache=not no_cache,
        resume=resume,
        progress=not quiet,
        kernel_name=kernel,
        executor=executor,
        scheduler=scheduler,
        # a command that finds every step cached should not wait for MLflow to record it,
        # unless it must read the steps' runs for refusals
        record_in_background=not fail_on_refusal,
    )
    click.echo(outcome.summary())
    if fail_on_refusal and outcome.refusals():
        steps = ", ".join(repr(step) for step, _ in outcome.refusals())
        click.echo(f"error: a gate refused a promotion in step {steps}", err=True)
        sys.exit(1)


run.help = help_text.RUN


@main.command()
@click.option("-n", "limit", default=20, show_default=True, help="How many runs.")
@click.option("--name", default=None, help="Only this pipeline.")
@_errors_to_exit
@_needs_store
def pipelines(limit: int, name: str | None) -> None:
    from .pipelines.history import format_pipeline_runs, pipeline_runs

    click.echo(format_pipeline_runs(pipeline_runs(load_settings(), name=name, limit=limit)))


pipelines.help = help_text.PIPELINES


@main.command()
@click.argument("uri")
@click.option("--name", required=True, help="Registered model name.")
@_errors_to_exit
@_needs_store
def register(uri: str, name: str) -> None:
    from .registry.service import register as register_model

    version = register_model(uri, name)
    click.echo(f"registered {version.name} version {version.version} from {version.source}")


register.help = help_text.REGISTER


@main.command()
@click.argument("name")
@click.argument("version")
@click.option("--alias", default="champion", show_default=True)
@click.option("--reason", default="", help="Why; required with --force.")
@click.option("--force", is_flag=True, help="Move the alias even if gates fail.")
@_errors_to_exit
@_needs_store
def promote(name: str, version: str, alias: str, reason: str, force: bool) -> None:
    from .registry.service import promote as promote_version

    click.echo(promote_version(name, version, alias, reason, force=force).summary())


promote.help = help_text.PROMOTE


@main.command()
@click.argument("name")
@click.option("--alias", default="champion", show_default=True)
@click.option("--reason", default="")
@_errors_to_exit
@_needs_store
def rollback(name: str, alias: str, reason: str) -> None:
    from .registry.service import rollback as rollback_alias

    move = rollback_alias(name, alias, reason)
    click.echo(f"{name}@{alias} rolled back from v{move.from_version} to v{move.to_version}")


rollback.help = help_text.ROLLBACK


@main.command()
@click.argument("name", required=False)
@_errors_to_exit
@_needs_store
def models(name: str | None) -> None:
    from .registry.service import format_models
    from .registry.service import models as list_models

    click.echo(format_models(list_models(name)))


models.help = help_text.MODELS


@main.command()
@click.argument("spec")
@click.option("--canary", default=None, metavar="SPEC:WEIGHT")
@click.option("--port", type=int, default=None)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--name", default=None, help="Deployment id (default: MODEL-<random>).")
@click.option("--follow", is_flag=True, help="Follow the alias when it moves.")
@_errors_to_exit
@_needs_store
def deploy(
    spec: str, canary: str | None, port: int | None, host: str, name: str | None, follow: bool
) -> None:
    from .serving import manager

    target, weight = manager.parse_canary(canary) if canary else (None, 0.1)
    d = manager.deploy(
        spec, canary=target, canary_weight=weight, port=port, host=host, name=name, follow=follow
    )
    click.echo(manager.format_deployments([d]))
    if d.token:
        click.echo(f"bearer token (the server listens beyond this machine): {d.token}")


deploy.help = help_text.DEPLOY


@main.command()
@click.argument("spec")
@click.option("--port", type=int, default=None)
@click.option("--host", default="127.0.0.1", show_default=True)
@_errors_to_exit
@_needs_store
def serve(spec: str, port: int | None, host: str) -> None:
    import time

    from .serving import manager

    d = manager.deploy(spec, port=port, host=host)
    click.echo(f"serving {d.spec} at {d.url} (Ctrl-C to stop)")
    try:
        while manager.get_deployment(d.id).status == "running":
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        manager.undeploy(d.id)


serve.help = help_text.SERVE


@main.command()
@_errors_to_exit
def deployments() -> None:
    from .serving import manager

    click.echo(manager.format_deployments(manager.deployments()))


deployments.help = help_text.DEPLOYMENTS


@main.command()
@click.argument("deployment")
@click.argument("weights", nargs=-1, required=True, metavar="VERSION=WEIGHT...")
@_errors_to_exit
def traffic(deployment: str, weights: tuple[str, ...]) -> None:
    from .serving import manager

    parsed = {}
    for version, raw in _pairs(weights, "VERSION=WEIGHT").items():
        try:
            parsed[version] = float(raw)
        except ValueError:
            raise click.BadParameter(f"{raw!r} is not a weight", param_hint=version) from None
    click.echo(manager.format_deployments([manager.set_traffic(deployment, parsed)]))


traffic.help = help_text.TRAFFIC


@main.command()
@click.argument("deployment")
@click.argument("spec")
@_errors_to_exit
def switch(deployment: str, spec: str) -> None:
    from .serving import manager

    click.echo(manager.format_deployments([manager.switch(deployment, spec)]))


switch.help = help_text.SWITCH


@main.command()
@click.argument("deployment")
@click.argument("state", type=click.Choice(["on", "off"]))
@_errors_to_exit
def capture(deployment: str, state: str) -> None:
    from .serving import manager

    on = manager.set_capture(deployment, state == "on")
    click.echo(manager.format_capture(deployment, on))


capture.help = help_text.CAPTURE


@main.command()
@click.argument("deployment")
@_errors_to_exit
def undeploy(deployment: str) -> None:
    from .serving import manager

    d = manager.undeploy(deployment)
    click.echo(f"stopped {d.id}")


undeploy.help = help_text.UNDEPLOY


@main.command()
@click.argument("deployment")
@click.option("--window", default="1h", show_default=True, help="How far back: 15m, 1h, 2d.")
@click.option("--no-act", is_flag=True, help="Report only; take no action.")
@click.option("--full-report", is_flag=True, help="Also log Evidently's full HTML report.")
@_errors_to_exit
@_needs_store
def monitor(deployment: str, window: str, no_act: bool, full_report: bool) -> None:
    from .monitoring.monitor import monitor as run_monitor

    result = run_monitor(deployment, window, act=not no_act, full_report=full_report)
    click.echo(result.summary())
    if result.triggered:
        sys.exit(3)  # for cron and CI: drift past the policy's threshold


monitor.help = help_text.MONITOR + " Exits 3 when the policy triggered."


@main.command()
@click.option("-n", "limit", default=20, show_default=True)
@_errors_to_exit
def alerts(limit: int) -> None:
    from .monitoring.monitor import alerts as list_alerts
    from .monitoring.monitor import format_alerts

    click.echo(format_alerts(list_alerts(limit=limit)))


alerts.help = help_text.ALERTS


@main.command()
@click.argument("spec", required=False, metavar="MODEL@ALIAS|MODEL/VERSION")
@click.option("--out", default=None, metavar="DIR", help=help_text.AUDIT_OUT)
@click.option("--request", "request_id", default=None, metavar="ID", help=help_text.AUDIT_REQUEST)
@_errors_to_exit
@_needs_store
def audit(spec: str | None, out: str | None, request_id: str | None) -> None:
    from .audit import audit as write_audit

    click.echo(write_audit(spec, out=out, request=request_id).summary())


audit.help = help_text.AUDIT


@main.command()
@click.argument("run_id", metavar="RUN_ID")
@click.option(
    "--tolerance",
    type=float,
    default=1e-6,
    show_default=True,
    help=help_text.REPRODUCE_TOLERANCE,
)
@_errors_to_exit
@_needs_store
def reproduce(run_id: str, tolerance: float) -> None:
    from .pipelines.reproduce import reproduce as run_again

    found = run_again(run_id, tolerance=tolerance, progress=True)
    click.echo(found.summary())
    if not found.same:
        sys.exit(4)  # for CI: the metrics came out different


reproduce.help = help_text.REPRODUCE


@main.command()
@click.argument("spec", metavar="MODEL@ALIAS|MODEL/VERSION|models:/...|runs:/...")
@click.option("--data", required=True, metavar="FILE.csv|FILE.parquet", help=help_text.EVAL_DATA)
@click.option("--target", required=True, metavar="COLUMN", help=help_text.EVAL_TARGET)
@click.option("--slices", default=None, metavar="COL1,COL2", help=help_text.EVAL_SLICES)
@click.option("--experiment", default=None, metavar="NAME", help=help_text.EVAL_EXPERIMENT)
@_errors_to_exit
@_needs_store
def evaluate(spec: str, data: str, target: str, slices: str | None, experiment: str | None) -> None:
    from .analysis.evaluate import evaluate as run_evaluation
    from .analysis.inputs import columns, describe, model_uri, read_data

    settings = load_settings()
    uri = model_uri(spec)
    result = run_evaluation(
        uri,
        read_data(data, settings),
        target=target,
        slices=columns(slices),
        experiment=experiment,
        settings=settings,
    )
    click.echo(describe(result, settings))


evaluate.help = help_text.EVALUATE


@main.command()
@click.argument("deployment")
@click.argument("file", metavar="FILE.csv|FILE.parquet", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@_errors_to_exit
def labels(deployment: str, file: str, as_json: bool) -> None:
    from .monitoring.labels import log_labels_file

    result = log_labels_file(deployment, file)
    if as_json:
        import json

        click.echo(json.dumps(result.to_dict(), indent=1))
    else:
        click.echo(result.summary())


labels.help = help_text.LABELS


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


SERVER_BACKEND = (
    "Database for runs and the registry: postgresql://USER:PASSWORD@HOST:PORT/DB. Read from "
    "MLFLOW_BACKEND_STORE_URI when not given, which keeps a password out of `ps`."
)
SERVER_ARTIFACTS = "Where the server keeps artifacts (default .mlops/team-artifacts)."


@main.command()
@click.option(
    "--backend-store-uri",
    default=None,
    metavar="URI",
    envvar="MLFLOW_BACKEND_STORE_URI",
    help=SERVER_BACKEND,
)
@click.option("--artifacts-destination", default=None, metavar="DIR|URI", help=SERVER_ARTIFACTS)
@click.option("--host", default=None, help="Interface to bind (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default 5000).")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Server workers (2).")
@click.option("--allow-remote", is_flag=True, help="Allow a --host other than this machine.")
@_errors_to_exit
def server(
    backend_store_uri: str | None,
    artifacts_destination: str | None,
    host: str | None,
    port: int | None,
    workers: int | None,
    allow_remote: bool,
) -> None:
    from .team.server import plan_server

    team = plan_server(
        backend_store_uri,
        artifacts_destination,
        host=host,
        port=port,
        workers=workers,
        allow_remote=allow_remote,
    )
    for warning in team.warnings:
        click.echo(f"warning: {warning}", err=True)
    log = load_settings().state_dir / "logs" / "team-server.log"
    # the server has a session of its own (so its workers stop with it): a terminal's
    # Ctrl-C or hang-up and a service manager's SIGTERM reach only this process
    saved = {
        signum: signal.signal(signum, _interrupt) for signum in (signal.SIGTERM, signal.SIGHUP)
    }
    try:
        code = _serve(team, log)
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)
    if code is not None:
        raise MlopsError(f"the tracking server exited with {code}; its log: {log}")


def _serve(team: TeamServer, log: Path) -> int | None:
    """Run the server until it exits (its code) or this process is interrupted (None)."""
    from .team.server import start_server, stop_server

    try:
        proc = start_server(team, log)
    except KeyboardInterrupt:
        return None  # start_server stopped what it started
    click.echo(team.summary())
    click.echo("(Ctrl-C to stop)")
    try:
        return proc.wait()
    except KeyboardInterrupt:
        return None
    finally:
        stop_server(proc)


server.help = (
    "Start an MLflow tracking server for a team: runs and registry in PostgreSQL (or MySQL, "
    "SQLite), artifacts served by the server. Options default to mlops.yaml's team: section."
)


@main.group()
def ci() -> None:
    """CI workflows that run a pipeline with its gates."""


@ci.command("init")
@click.argument("pipeline", type=click.Path(dir_okay=False))
@click.option("--github", "kind", flag_value="github", help="GitHub Actions workflow.")
@click.option("--gitlab", "kind", flag_value="gitlab", help="GitLab CI pipeline (.gitlab-ci.yml).")
@click.option("--audit", default=None, metavar="MODEL@ALIAS", help=help_text.CI_AUDIT)
@click.option(
    "--python", default=None, metavar="X.Y", help="Python of the build (default: this one)."
)
@click.option("--force", is_flag=True, help="Replace an existing workflow file.")
@_errors_to_exit
def ci_init(
    pipeline: str, kind: str | None, audit: str | None, python: str | None, force: bool
) -> None:
    from .pipelines.ci import init_workflow

    if kind is None:
        raise click.UsageError("ci init needs --github or --gitlab")
    click.echo(init_workflow(kind, pipeline, audit=audit, python=python, force=force).summary())


ci_init.help = help_text.CI_INIT


@main.command()
@click.argument("what", metavar="PIPELINE | monitor")
@click.argument("deployment", required=False, metavar="[DEPLOYMENT]")
@click.option("--cron", default=None, metavar="EXPRESSION", help="When, as cron fields (UTC).")
@click.option("--every", default=None, metavar="INTERVAL", help=help_text.SCHEDULE_EVERY)
@click.option("--window", default=None, metavar="15m", help=help_text.SCHEDULE_WINDOW)
@click.option("--name", default=None, help="The schedule's name (default pipeline-X/monitor-X).")
@click.option("-p", "--param", "params", multiple=True, metavar="NAME=VALUE", help=help_text.PARAM)
@click.option("--kernel", default=None, help="Kernel of the job's notebook (default python3).")
@_errors_to_exit
def schedule(
    what: str,
    deployment: str | None,
    cron: str | None,
    every: str | None,
    window: str | None,
    name: str | None,
    params: tuple[str, ...],
    kernel: str | None,
) -> None:
    from .scheduling import schedule as make

    made = make(
        what, deployment, cron=cron, every=every, window=window, name=name,
        params=_pairs(params, "--param"), kernel=kernel,
    )  # fmt: skip
    click.echo(made.summary())


schedule.help = help_text.SCHEDULE


@main.command("schedules")
@_errors_to_exit
def schedules_() -> None:
    from .scheduling import format_schedules, schedules

    click.echo(format_schedules(schedules()))


schedules_.help = help_text.SCHEDULES


@main.command()
@click.argument("name")
@_errors_to_exit
def unschedule(name: str) -> None:
    from .scheduling import unschedule as remove

    gone = remove(name)
    click.echo(f"unscheduled {gone.name} ({gone.kind} {gone.target})")


unschedule.help = help_text.UNSCHEDULE


@main.command()
@click.argument("spec", metavar="MODEL@ALIAS")
@click.option(
    "--target", required=True, type=click.Choice(["kserve", "triton", "mlserver"]), help="Platform."
)
@click.option("--out", default=None, help="Directory to write (default deploy/TARGET/MODEL-vN).")
@click.option("--storage-uri", default=None, help="KServe: where the model repository will live.")
@_errors_to_exit
@_needs_store
def manifest(spec: str, target: str, out: str | None, storage_uri: str | None) -> None:
    from .team.manifest import write_manifest

    click.echo(write_manifest(spec, target, out, storage_uri=storage_uri).summary())


manifest.help = (
    "Write a registered ONNX model out for KServe (InferenceService YAML), Triton (model "
    "repository with config.pbtxt) or MLServer (model-settings.json): Open Inference Protocol."
)


if __name__ == "__main__":
    main()
