"""``%mlops`` and ``%%mlops``: parse the line, call one service function, print the result.

Errors from the package are printed as one message, never as a traceback.
"""

from __future__ import annotations

import argparse
import shlex
from typing import Any, NoReturn

from IPython.core.magic import Magics, line_cell_magic, magics_class

from . import help_text
from .exceptions import MlopsError, UsageError
from .tracking import api
from .tracking.queries import cell_runs, format_table

USAGE = (
    "usage: %mlops {status,on,off,log k=v ...,tag k=v ...,runs [-n N],stale,flush,"
    "run PIPELINE [-p k=v] [--parallel N] [--no-cache] [--resume ID] [--sweep k=v1,v2]"
    " [--search optuna --trials N --objective METRIC:max --space k=RANGE]"
    " [--executor dask --scheduler ADDRESS],search PIPELINE --trials N --objective M:max,"
    "pipelines [-n N],template NAME [--force],lineage NAME|MODEL@ALIAS,"
    "slice NAME TEMPLATE [--force],reproduce RUN_ID [--tolerance T],"
    "package MODEL --example VAR [--name N],"
    "register [URI --name N],promote NAME VERSION [--alias A] [--reason R] [--force],"
    "rollback NAME [--alias A],models [NAME],deploy SPEC [--canary SPEC:W] [--port P],"
    "deployments,traffic ID V=W ...,switch ID SPEC,capture ID on|off,undeploy ID,drift REF CUR,"
    "monitor DEPLOYMENT [--window 1h],alerts,"
    "schedule PIPELINE --cron EXPR [-p k=v]|monitor DEPLOYMENT --every 15m,schedules,"
    "unschedule NAME,audit SPEC [--out DIR] [--request ID],"
    "evaluate SPEC --data FILE|VAR --target COL [--slices a,b] [--experiment NAME],"
    "panel [--tab T],help}"
)


_STALE = (
    "List the cells whose latest run is stale (an upstream cell re-run with new source or "
    "values, a param changed since), with why."
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"%mlops: {message}", USAGE)

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        raise UsageError(message or "", USAGE)


def _pairs(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"%mlops: expected k=v, got {item!r}", USAGE)
        out[key] = value
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="%mlops", add_help=False)
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    sub.add_parser("status", help=help_text.STATUS, add_help=False)
    sub.add_parser("on", help=help_text.ON, add_help=False)
    sub.add_parser("off", help=help_text.OFF, add_help=False)
    log = sub.add_parser("log", help=help_text.LOG, add_help=False)
    log.add_argument("pairs", nargs="+", metavar="k=v")
    tag = sub.add_parser("tag", help=help_text.TAG, add_help=False)
    tag.add_argument("pairs", nargs="+", metavar="k=v")
    runs = sub.add_parser("runs", help=help_text.RUNS, add_help=False)
    runs.add_argument("-n", type=int, default=10, metavar="N")
    sub.add_parser("flush", help=help_text.FLUSH, add_help=False)
    sub.add_parser("stale", help=_STALE, add_help=False)
    run = sub.add_parser("run", help=help_text.RUN, add_help=False)
    run.add_argument("pipeline")
    run.add_argument("-p", "--param", action="append", default=[], metavar="k=v")
    run.add_argument("--parallel", type=int, default=None)
    run.add_argument("--no-cache", action="store_true")
    run.add_argument("--executor", default="local")
    run.add_argument("--scheduler", default=None)
    run.add_argument("--resume", default=None)
    run.add_argument("--sweep", action="append", default=[])
    run.add_argument("--search", choices=["optuna"], default=None)
    srch = sub.add_parser("search", help=help_text.SEARCH, add_help=False)
    srch.add_argument("pipeline")
    srch.add_argument("-p", "--param", action="append", default=[], metavar="k=v")
    for p in (run, srch):
        p.add_argument("--trials", type=int, default=None)
        p.add_argument("--objective", default=None)
        p.add_argument("--space", action="append", default=[])
        p.add_argument("--study", default=None)
        p.add_argument("--pruner", default="median")
    srch.add_argument("--parallel", type=int, default=None)
    srch.add_argument("--no-cache", action="store_true")
    srch.add_argument("--executor", default="local")
    srch.add_argument("--scheduler", default=None)
    template = sub.add_parser("template", help=help_text.TEMPLATE, add_help=False)
    template.add_argument("name")
    template.add_argument("--force", action="store_true")
    lin = sub.add_parser("lineage", help=help_text.LINEAGE, add_help=False)
    lin.add_argument("name")
    sli = sub.add_parser("slice", help=help_text.SLICE, add_help=False)
    sli.add_argument("name")
    sli.add_argument("template")
    sli.add_argument("--force", action="store_true")
    rep = sub.add_parser("reproduce", help=help_text.REPRODUCE, add_help=False)
    rep.add_argument("run_id")
    rep.add_argument("--tolerance", type=float, default=1e-6)
    pkg = sub.add_parser("package", help=help_text.PACKAGE, add_help=False)
    pkg.add_argument("model")
    pkg.add_argument("--example", required=True)
    pkg.add_argument("--name", default=None)
    pkg.add_argument("--tolerance", type=float, default=1e-4)
    pkg.add_argument("--reference", default=None)
    reg = sub.add_parser("register", help=help_text.REGISTER, add_help=False)
    reg.add_argument("uri", nargs="?")
    reg.add_argument("--name", default=None)
    pro = sub.add_parser("promote", help=help_text.PROMOTE, add_help=False)
    pro.add_argument("name")
    pro.add_argument("version")
    pro.add_argument("--alias", default="champion")
    pro.add_argument("--reason", default="")
    pro.add_argument("--force", action="store_true")
    rb = sub.add_parser("rollback", help=help_text.ROLLBACK, add_help=False)
    rb.add_argument("name")
    rb.add_argument("--alias", default="champion")
    rb.add_argument("--reason", default="")
    mods = sub.add_parser("models", help=help_text.MODELS, add_help=False)
    mods.add_argument("name", nargs="?")
    dep = sub.add_parser("deploy", help=help_text.DEPLOY, add_help=False)
    dep.add_argument("spec")
    dep.add_argument("--canary", default=None)
    dep.add_argument("--port", type=int, default=None)
    dep.add_argument("--name", default=None)
    dep.add_argument("--follow", action="store_true")
    sub.add_parser("deployments", help=help_text.DEPLOYMENTS, add_help=False)
    tr = sub.add_parser("traffic", help=help_text.TRAFFIC, add_help=False)
    tr.add_argument("deployment")
    tr.add_argument("weights", nargs="+", metavar="VERSION=WEIGHT")
    sw = sub.add_parser("switch", help=help_text.SWITCH, add_help=False)
    sw.add_argument("deployment")
    sw.add_argument("spec")
    cap = sub.add_parser("capture", help=help_text.CAPTURE, add_help=False)
    cap.add_argument("deployment")
    cap.add_argument("state", choices=["on", "off"])
    und = sub.add_parser("undeploy", help=help_text.UNDEPLOY, add_help=False)
    und.add_argument("deployment")
    dr = sub.add_parser("drift", help=help_text.DRIFT, add_help=False)
    dr.add_argument("reference")
    dr.add_argument("current")
    mon = sub.add_parser("monitor", help=help_text.MONITOR, add_help=False)
    mon.add_argument("deployment")
    mon.add_argument("--window", default="1h")
    sub.add_parser("alerts", help=help_text.ALERTS, add_help=False)
    sch = sub.add_parser("schedule", help=help_text.SCHEDULE, add_help=False)
    sch.add_argument("what")
    sch.add_argument("deployment", nargs="?")
    sch.add_argument("--cron", default=None)
    sch.add_argument("--every", default=None)
    sch.add_argument("--window", default=None)
    sch.add_argument("--name", default=None)
    sch.add_argument("-p", "--param", dest="params", action="append", default=[])
    sch.add_argument("--kernel", default=None)
    sub.add_parser("schedules", help=help_text.SCHEDULES, add_help=False)
    unsch = sub.add_parser("unschedule", help=help_text.UNSCHEDULE, add_help=False)
    unsch.add_argument("name")
    aud = sub.add_parser("audit", help=help_text.AUDIT, add_help=False)
    aud.add_argument("spec", nargs="?")
    aud.add_argument("--out", default=None)
    aud.add_argument("--request", default=None)
    ev = sub.add_parser("evaluate", help=help_text.EVALUATE, add_help=False)
    ev.add_argument("spec")
    ev.add_argument("--data", required=True)
    ev.add_argument("--target", required=True)
    ev.add_argument("--slices", default=None)
    ev.add_argument("--experiment", default=None)
    pipes = sub.add_parser("pipelines", help=help_text.PIPELINES, add_help=False)
    pipes.add_argument("-n", type=int, default=10, metavar="N")
    panel = sub.add_parser("panel", help=help_text.PANEL, add_help=False)
    panel.add_argument(
        "--tab", choices=("runs", "models", "deployments", "drift", "quality"), default="runs"
    )
    sub.add_parser("help", add_help=False)
    return parser


def help_message() -> str:
    lines = [USAGE, ""]
    for name, text in (
        ("status", help_text.STATUS),
        ("on", help_text.ON),
        ("off", help_text.OFF),
        ("log k=v ...", help_text.LOG),
        ("tag k=v ...", help_text.TAG),
        ("runs [-n N]", help_text.RUNS),
        ("stale", _STALE),
        ("flush", help_text.FLUSH),
        ("run PIPELINE", help_text.RUN),
        ("search PIPELINE --trials N --objective M:max", help_text.SEARCH),
        ("pipelines", help_text.PIPELINES),
        ("template NAME", help_text.TEMPLATE),
        ("lineage NAME", help_text.LINEAGE),
        ("slice NAME TEMPLATE", help_text.SLICE),
        ("reproduce RUN_ID", help_text.REPRODUCE),
        ("package MODEL", help_text.PACKAGE),
        ("register", help_text.REGISTER),
        ("promote", help_text.PROMOTE),
        ("rollback NAME", help_text.ROLLBACK),
        ("models", help_text.MODELS),
        ("deploy SPEC", help_text.DEPLOY),
        ("deployments", help_text.DEPLOYMENTS),
        ("traffic ID V=W", help_text.TRAFFIC),
        ("switch ID SPEC", help_text.SWITCH),
        ("capture ID on|off", help_text.CAPTURE),
        ("undeploy ID", help_text.UNDEPLOY),
        ("drift REF CUR", help_text.DRIFT),
        ("monitor ID", help_text.MONITOR),
        ("alerts", help_text.ALERTS),
        ("schedule PIPELINE|monitor ID", help_text.SCHEDULE),
        ("schedules", help_text.SCHEDULES),
        ("unschedule NAME", help_text.UNSCHEDULE),
        ("audit SPEC", help_text.AUDIT),
        ("evaluate SPEC", help_text.EVALUATE),
        ("panel", help_text.PANEL),
        ("%%mlops skip", help_text.SKIP),
    ):
        lines.append(f"  {name:<14} {text}")
    return "\n".join(lines)


def _masked_count() -> int:
    """Secret values and literals kept out of the records so far in this kernel."""
    session = api.active_session()
    redactor = getattr(session.recorder, "redactor", None) if session else None
    return int(getattr(redactor, "masked", 0))


def _status_text() -> str:
    info = api.status()
    return "\n".join(
        [
            f"tracking:      {'on' if info.enabled else 'off'}",
            f"project:       {info.project_dir}",
            f"store:         {info.tracking_uri}",
            f"experiment:    {info.experiment}",
            f"notebook:      {info.notebook or '(unknown)'}",
            f"session run:   {info.session_run_id or '(not written yet)'}",
            f"cells tracked: {info.cells_recorded}",
            f"masked:        {_masked_count()} secret values kept out of params and source",
            f"queued bytes:  {info.bytes_pending}"
            + ("" if info.drainer_alive else "  (writer not running)"),
        ]
        + (
            [f"waiting:       {info.records_waiting} records waiting in memory for the disk"]
            if info.records_waiting
            else []
        )
        + (
            [f"dropped:       {info.records_dropped} records (too many waited for the disk)"]
            if info.records_dropped
            else []
        )
    )


def _runs_text(limit: int) -> str:
    if limit < 1:
        raise UsageError("%mlops runs: -n must be at least 1", USAGE)
    session = api.require_session()
    note = api.flush(timeout=10.0)
    if session.drainer.session_run_id is None:
        return f"no cell runs in the store yet ({note})"
    rows = cell_runs(session.settings, session_run_id=session.drainer.session_run_id, limit=limit)
    return format_table(rows)


def _template_text(name: str, force: bool) -> str:
    from .pipelines.templating import make_template

    session = api.require_session()
    if session.notebook is None:
        raise MlopsError(
            "this kernel does not know its notebook file (run it from JupyterLab, or set "
            "JUPYTER_MLOPS_NOTEBOOK)"
        )
    path, names = make_template(
        session.settings, session.notebook, name, api.tracked_params(), force=force
    )
    return f"wrote {session.settings.relative(path)} with parameters {', '.join(names)}"


def _slice_text(args: argparse.Namespace, namespace: dict[str, Any] | None) -> str:
    from .tracking.lineage import name_lineage
    from .tracking.slicing import slice_notebook

    found = name_lineage(args.name)
    session = api.require_session()
    path, names = slice_notebook(
        session.settings, found, args.template, (namespace or {}).get(args.name), force=args.force
    )
    params = f" and parameters {', '.join(names)}" if names else ""
    return (
        f"wrote {session.settings.relative(path)}: {len(found.runs)} cell(s) of "
        f"{args.name}'s lineage{params}; run it with jupyter mlops run or papermill"
    )


def _run_text(args: argparse.Namespace) -> str:
    from .pipelines.runner import run_pipeline
    from .pipelines.sweep import parse_sweep, run_sweep

    overrides = _pairs(args.param)
    if args.parallel is not None and args.parallel < 1:
        raise UsageError("%mlops run: --parallel must be at least 1", USAGE)
    if args.search:
        from .pipelines.search import search_from_options

        if args.trials is None or args.objective is None:
            raise UsageError(
                "%mlops run: --search optuna needs --trials N and --objective METRIC:max", USAGE
            )
        found = search_from_options(
            args.pipeline, overrides, args.space, trials=args.trials, objective=args.objective,
            study=args.study, pruner=args.pruner, parallel=args.parallel,
            use_cache=not args.no_cache, executor=args.executor, scheduler=args.scheduler,
        )  # fmt: skip
        return found.table()
    if args.sweep:
        result = run_sweep(
            args.pipeline,
            overrides,
            parse_sweep(args.sweep),
            parallel=args.parallel,
            use_cache=not args.no_cache,
            executor=args.executor,
            scheduler=args.scheduler,
        )
        failures = "".join(f"\nerror: {f}" for f in result.failures)
        return result.table() + failures
    return run_pipeline(
        args.pipeline,
        overrides,
        parallel=args.parallel,
        use_cache=not args.no_cache,
        resume=args.resume,
        executor=args.executor,
        scheduler=args.scheduler,
    ).summary()


def _variable(namespace: dict[str, Any] | None, name: str, role: str) -> Any:
    if namespace is None or name not in namespace:
        raise UsageError(f"%mlops: no variable {name!r} in this notebook (the {role})", USAGE)
    return namespace[name]


def _registry_text(args: argparse.Namespace, namespace: dict[str, Any] | None) -> str:
    from .registry import service

    if args.command == "package":
        from .packaging.package import package

        packaged = package(
            _variable(namespace, args.model, "model"),
            _variable(namespace, args.example, "example input"),
            name=args.name,
            tolerance=args.tolerance,
            reference=_variable(namespace, args.reference, "reference sample")
            if args.reference
            else None,
        )
        _last["packaged"] = packaged
        return (
            f"packaged {packaged.name}: {packaged.model_uri} (run {packaged.run_id})\n"
            f"parity: max abs diff {packaged.parity['max_abs_diff']:.3g} "
            f"<= {packaged.parity['tolerance']:g}; opset {packaged.opset}; "
            f"{packaged.size_bytes} bytes\nnext: %mlops register"
        )
    if args.command == "register":
        target = args.uri or _last.get("packaged")
        if target is None:
            raise UsageError("%mlops register: nothing packaged here yet; give a URI", USAGE)
        version = service.register(target, args.name)
        return f"registered {version.name} version {version.version} from {version.source}"
    if args.command == "promote":
        return service.promote(
            args.name, args.version, args.alias, args.reason, force=args.force
        ).summary()
    if args.command == "rollback":
        move = service.rollback(args.name, args.alias, args.reason)
        return (
            f"{args.name}@{args.alias} rolled back from v{move.from_version} to v{move.to_version}"
        )
    return service.format_models(service.models(args.name))


_last: dict[str, Any] = {}


def _serving_text(args: argparse.Namespace) -> str:
    from .serving import manager

    if args.command == "deploy":
        canary, weight = manager.parse_canary(args.canary) if args.canary else (None, 0.1)
        d = manager.deploy(
            args.spec,
            canary=canary,
            canary_weight=weight,
            port=args.port,
            name=args.name,
            follow=args.follow,
        )
        return f"deployed {d.spec} as {d.id} at {d.url}\n" + manager.format_deployments([d])
    if args.command == "deployments":
        return manager.format_deployments(manager.deployments())
    if args.command == "traffic":
        weights: dict[str, float] = {}
        for version, raw in _pairs(args.weights).items():
            try:
                weights[version] = float(raw)
            except ValueError:
                raise UsageError(f"%mlops traffic: {raw!r} is not a weight", USAGE) from None
        return manager.format_deployments([manager.set_traffic(args.deployment, weights)])
    if args.command == "switch":
        return manager.format_deployments([manager.switch(args.deployment, args.spec)])
    if args.command == "capture":
        on = manager.set_capture(args.deployment, args.state == "on")
        return manager.format_capture(args.deployment, on)
    d = manager.undeploy(args.deployment)
    return f"stopped {d.id} (captured traffic kept in .mlops/inference/{d.id})"


def _evaluate_text(args: argparse.Namespace, namespace: dict[str, Any] | None) -> str:
    """``--data`` names a DataFrame of the notebook, else a file inside the project."""
    from .analysis.evaluate import evaluate
    from .analysis.inputs import columns, describe, model_uri, read_data
    from .config import load_settings

    settings = load_settings()
    uri = model_uri(args.spec)
    namespace = namespace or {}
    if args.data in namespace:
        data = namespace[args.data]
        if not hasattr(data, "columns"):
            raise UsageError(
                f"%mlops evaluate: {args.data!r} is a {type(data).__name__}, not a DataFrame",
                USAGE,
            )
    elif args.data.isidentifier():  # a name, not a file name: a variable that is missing
        raise UsageError(
            f"%mlops evaluate: no variable {args.data!r} in this notebook (--data takes a "
            "DataFrame's name or a .csv or .parquet file)",
            USAGE,
        )
    else:
        data = read_data(args.data, settings)
    result = evaluate(
        uri,
        data,
        target=args.target,
        slices=columns(args.slices),
        experiment=args.experiment,
        settings=settings,
    )
    return describe(result, settings)


def _schedule_text(args: argparse.Namespace) -> str:
    from . import scheduling

    if args.command == "schedules":
        return scheduling.format_schedules(scheduling.schedules())
    if args.command == "unschedule":
        gone = scheduling.unschedule(args.name)
        return f"unscheduled {gone.name} ({gone.kind} {gone.target})"
    made = scheduling.schedule(
        args.what, args.deployment, cron=args.cron, every=args.every, window=args.window,
        name=args.name, params=_pairs(args.params), kernel=args.kernel,
    )  # fmt: skip
    return made.summary()


def run_line(line: str, namespace: dict[str, Any] | None = None) -> str:
    """Execute one ``%mlops`` line; the text to show. Raises MlopsError on bad input.

    ``namespace`` is the notebook's variables, for commands that take a variable name.
    """
    try:
        argv = shlex.split(line)
    except ValueError as err:
        raise UsageError(f"%mlops: {err}", USAGE) from None
    if not argv:
        return help_message()
    args = build_parser().parse_args(argv)
    command = args.command
    if command == "help":
        return help_message()
    if command == "status":
        return _status_text()
    if command in ("on", "off"):
        api.set_enabled(command == "on")
        return f"cell tracking {command}"
    if command == "log":
        params, metrics, refused = api.log_pairs(_pairs(args.pairs))
        text = f"logged params {sorted(params)} and metrics {sorted(metrics)} to this cell's run"
        if refused:
            text += "; not logged: " + ", ".join(f"{k} ({why})" for k, why in refused.items())
        return text
    if command == "tag":
        tags = _pairs(args.pairs)
        api.require_session().recorder.set_tags(tags)
        return "tags set on the session run"
    if command == "runs":
        return _runs_text(args.n)
    if command == "stale":
        from .tracking.stale import format_stale, stale

        return format_stale(stale())
    if command == "flush":
        return api.flush()
    if command == "run":
        return _run_text(args)
    if command == "search":  # the same as run --search optuna
        args.search, args.sweep, args.resume = "optuna", [], None
        return _run_text(args)
    if command == "drift":
        from .monitoring.drift import drift

        report = drift(
            _variable(namespace, args.reference, "reference"),
            _variable(namespace, args.current, "current data"),
        )
        return f"{report.verdict()}\n{report.summary().to_string()}"
    if command == "monitor":
        from .monitoring.monitor import monitor

        return monitor(args.deployment, args.window).summary()
    if command == "alerts":
        from .monitoring.monitor import alerts, format_alerts

        return format_alerts(alerts())
    if command in ("schedule", "schedules", "unschedule"):
        return _schedule_text(args)
    if command == "audit":
        from .audit import audit

        return audit(args.spec, out=args.out, request=args.request).summary()
    if command == "evaluate":
        return _evaluate_text(args, namespace)
    if command in ("deploy", "deployments", "traffic", "switch", "capture", "undeploy"):
        return _serving_text(args)
    if command in ("package", "register", "promote", "rollback", "models"):
        return _registry_text(args, namespace)
    if command == "template":
        return _template_text(args.name, args.force)
    if command == "lineage":
        from IPython.display import display

        from .tracking.lineage import name_lineage

        found = name_lineage(args.name)
        display(found.figure())  # type: ignore[no-untyped-call]
        return found.describe()
    if command == "slice":
        return _slice_text(args, namespace)
    if command == "reproduce":
        from .pipelines.reproduce import reproduce

        return reproduce(args.run_id, tolerance=args.tolerance).summary()
    if command == "panel":
        from IPython.display import display

        from .widgets import Panel

        display(Panel(namespace, tab=args.tab))  # type: ignore[no-untyped-call]
        return ""
    if command == "pipelines":
        from .config import load_settings
        from .pipelines.history import format_pipeline_runs, pipeline_runs

        return format_pipeline_runs(pipeline_runs(load_settings(), limit=args.n))
    raise UsageError(f"%mlops: unknown command {command!r}", USAGE)  # pragma: no cover


@magics_class
class MlopsMagics(Magics):
    """``%mlops ...`` and ``%%mlops skip``."""

    @line_cell_magic
    def mlops(self, line: str, cell: str | None = None) -> None:
        try:
            if cell is not None:
                self._cell(line, cell)
                return
            text = run_line(line, self.shell.user_ns if self.shell is not None else None)
            if text:  # %mlops panel displays its widget instead
                print(text)
        except MlopsError as err:
            print(str(err))

    def _cell(self, line: str, cell: str) -> Any:
        if line.strip() != "skip":
            raise UsageError(
                f"%%mlops: unknown cell command {line.strip()!r}", "usage: %%mlops skip"
            )
        # the recorder sees this cell start with '%%mlops skip' and leaves it out
        assert self.shell is not None
        self.shell.run_cell(cell, store_history=False)  # type: ignore[no-untyped-call]
