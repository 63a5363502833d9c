"""Schedules of the project: make, list and remove them through jupyter-scheduler.

A schedule is a jupyter-scheduler job definition tagged ``jupyter-mlops`` whose parameters
name the project, the kind (``pipeline`` or ``monitor``) and the target; its notebook is
``.mlops/schedules/NAME.ipynb``. Times are UTC, as jupyter-scheduler reads a definition
without a time zone.
"""

from __future__ import annotations

import datetime
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import Settings, load_settings
from ..exceptions import NotFoundError
from .cron import ScheduleError, check_cron, every_to_cron, next_run
from .job import job_notebook, parameters
from .jupyter_server import JupyterServer, find_server

#: the tag of every job definition made here, so listing leaves the user's own jobs out
TAG = "jupyter-mlops"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")


@dataclass(frozen=True)
class Schedule:
    name: str
    kind: str
    target: str
    cron: str
    job_definition_id: str
    active: bool = True
    next_run: str = ""
    #: the newest job's status (COMPLETED, FAILED, IN_PROGRESS...) and start, if one ran
    last_status: str = ""
    last_run: str = ""

    def summary(self) -> str:
        return (
            f"scheduled {self.name}: {self.kind} {self.target} on {self.cron!r} (UTC), "
            f"next run {self.next_run}; it runs while the Jupyter server runs and appears "
            "in JupyterLab's Notebook Jobs"
        )


def _when(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _kernel(kernel: str | None) -> str:
    if kernel:
        return kernel
    from jupyter_client.kernelspec import KernelSpecManager

    names = KernelSpecManager().find_kernel_specs()
    return "python3" if "python3" in names or not names else sorted(names)[0]


def _environment(server: JupyterServer) -> str:
    """The server's first runtime environment: what JupyterLab's job form would pick (the
    job itself runs on the notebook's kernel)."""
    found = server.call("GET", "scheduler/runtime_environments") or []
    return str(found[0]["name"]) if found else "python3"


def _check_name(name: str) -> str:
    if not _NAME.match(name):
        raise ScheduleError(
            f"schedule name {name!r}: letters, digits, '.', '_' and '-' only (at most 80)"
        )
    return name


def _ours(server: JupyterServer, settings: Settings) -> list[dict[str, Any]]:
    """This project's job definitions on ``server``."""
    found: list[dict[str, Any]] = []
    token: Any = None
    while True:
        query: dict[str, Any] = {"tags": TAG, "max_items": 100}
        if token is not None:
            query["next_token"] = token
        page = server.call("GET", "scheduler/job_definitions", query=query)
        for definition in page.get("job_definitions", []):
            project = json.loads((definition.get("parameters") or {}).get("project_dir", '""'))
            if project == str(settings.project_dir):
                found.append(definition)
        token = page.get("next_token")
        if token is None:
            return found


def _param(definition: dict[str, Any], key: str) -> str:
    value = json.loads((definition.get("parameters") or {}).get(key, '""'))
    return str(value)


def _describe(server: JupyterServer, definition: dict[str, Any]) -> Schedule:
    cron = definition.get("schedule") or ""
    jobs = server.call(
        "GET", "scheduler/jobs",
        query={"job_definition_id": definition["job_definition_id"], "max_items": 1},
    )  # fmt: skip  # newest first: jupyter-scheduler sorts jobs by create time, descending
    last = (jobs.get("jobs") or [None])[0]
    started = last and (last.get("start_time") or last.get("create_time"))
    return Schedule(
        name=definition["name"],
        kind=_param(definition, "kind"),
        target=_param(definition, "target"),
        cron=cron,
        job_definition_id=definition["job_definition_id"],
        active=bool(definition.get("active", True)),
        next_run=_when(next_run(cron)) if cron and definition.get("active", True) else "",
        last_status=str(last.get("status", "")) if last else "",
        last_run=_when(datetime.datetime.fromtimestamp(started / 1000, datetime.timezone.utc))
        if started
        else "",
    )


def _create(
    settings: Settings,
    *,
    name: str,
    kind: str,
    target: str,
    cron: str,
    window: str = "",
    params: dict[str, str] | None = None,
    kernel: str | None = None,
) -> Schedule:
    import nbformat

    from ..store import PRIVATE_FILE, private_dir

    server = find_server(settings.project_dir)
    if any(d["name"] == name for d in _ours(server, settings)):
        raise ScheduleError(
            f"a schedule named {name!r} exists: `jupyter mlops unschedule {name}` first, "
            "or pass --name"
        )
    folder = private_dir(settings.state_dir / "schedules")
    notebook = folder / f"{name}.ipynb"
    nbformat.write(job_notebook(_kernel(kernel)), str(notebook))  # type: ignore[no-untyped-call]
    notebook.chmod(PRIVATE_FILE)
    answer = server.call(
        "POST", "scheduler/job_definitions",
        {
            "name": name,
            "input_uri": server.relative(notebook),
            "runtime_environment_name": _environment(server),
            "output_formats": ["ipynb"],
            "parameters": parameters(
                name, kind, target, settings.project_dir, window, params or {}
            ),
            "tags": [TAG, kind],
            "schedule": cron,
        },
    )  # fmt: skip
    definition = server.call("GET", f"scheduler/job_definitions/{answer['job_definition_id']}")
    return _describe(server, definition)


def _pipeline_target(settings: Settings, pipeline: str | Path, params: dict[str, str]) -> str:
    """The pipeline, relative to the project; a missing or malformed one, or a parameter it
    does not take, is refused now rather than at 03:00."""
    from ..pipelines.params import resolve_pipeline_params
    from ..pipelines.spec import load_pipeline

    path = settings.resolve_inside(pipeline)
    resolve_pipeline_params(load_pipeline(path), params)
    return settings.relative(path)


def _when_to_run(cron: str | None, every: str | None) -> tuple[str, float | None]:
    if (cron is None) == (every is None):
        raise ScheduleError("a schedule needs --cron EXPRESSION or --every INTERVAL (one)")
    if every is not None:
        return every_to_cron(every)
    assert cron is not None
    return check_cron(cron), None


def schedule_pipeline(
    pipeline: str | Path,
    cron: str | None = None,
    *,
    every: str | None = None,
    name: str | None = None,
    params: dict[str, str] | None = None,
    kernel: str | None = None,
    settings: Settings | None = None,
) -> Schedule:
    """Run ``pipeline`` on a cron schedule (or ``every="6h"``) with ``params`` overrides.

    >>> schedule_pipeline("pipeline.yaml", "0 3 * * *")  # doctest: +SKIP
    """
    settings = settings or load_settings()
    expression, _ = _when_to_run(cron, every)
    target = _pipeline_target(settings, pipeline, params or {})
    name = _check_name(name or f"pipeline-{Path(target).stem}")
    return _create(
        settings, name=name, kind="pipeline", target=target, cron=expression, params=params,
        kernel=kernel,
    )  # fmt: skip


def schedule_monitor(
    deployment: str,
    every: str | None = "15m",
    *,
    cron: str | None = None,
    window: str | None = None,
    name: str | None = None,
    kernel: str | None = None,
    settings: Settings | None = None,
) -> Schedule:
    """Monitor ``deployment`` every ``every`` (or on ``cron``), over the traffic of the
    last ``window`` (default: the interval, so each request is judged once), applying the
    monitoring policy of ``mlops.yaml``.

    >>> schedule_monitor("prod", every="15m")  # doctest: +SKIP
    """
    from ..monitoring.monitor import parse_window
    from ..serving.manager import get_deployment

    settings = settings or load_settings()
    expression, seconds = _when_to_run(cron, every if cron is None else None)
    if window is not None:
        parse_window(window)
    elif seconds is None:
        raise ScheduleError("a monitor on --cron needs --window (how far back each run looks)")
    try:
        get_deployment(deployment, settings=settings)
    except NotFoundError:
        raise ScheduleError(
            f"no deployment {deployment!r} in this project (`jupyter mlops deployments` lists them)"
        ) from None
    name = _check_name(name or f"monitor-{deployment}")
    return _create(
        settings, name=name, kind="monitor", target=deployment, cron=expression,
        window=window or f"{seconds:g}s", kernel=kernel,
    )  # fmt: skip


def schedule(
    what: str,
    deployment: str | None = None,
    *,
    cron: str | None = None,
    every: str | None = None,
    window: str | None = None,
    name: str | None = None,
    params: dict[str, str] | None = None,
    kernel: str | None = None,
    settings: Settings | None = None,
) -> Schedule:
    """What the doors call: ``schedule("pipeline.yaml", cron=...)`` or
    ``schedule("monitor", "prod", every="15m")``."""
    if what == "monitor" and not Path(what).is_file():
        if deployment is None:
            raise ScheduleError("schedule monitor needs a DEPLOYMENT")
        if params:
            raise ScheduleError("-p/--param is for a pipeline schedule")
        if every is None and cron is None:
            every = "15m"
        return schedule_monitor(
            deployment, every, cron=cron, window=window, name=name, kernel=kernel,
            settings=settings,
        )  # fmt: skip
    if deployment is not None:
        raise ScheduleError(f"unexpected argument {deployment!r} after the pipeline")
    if window is not None:
        raise ScheduleError("--window is for a monitor schedule")
    return schedule_pipeline(
        what, cron, every=every, name=name, params=params, kernel=kernel, settings=settings
    )


def schedules(*, settings: Settings | None = None) -> list[Schedule]:
    """This project's schedules, by name."""
    settings = settings or load_settings()
    server = find_server(settings.project_dir)
    found = [_describe(server, d) for d in _ours(server, settings)]
    return sorted(found, key=lambda s: s.name)


def unschedule(name: str, *, settings: Settings | None = None) -> Schedule:
    """Remove schedule ``name`` (its job definition, the jobs it ran, its notebook)."""
    settings = settings or load_settings()
    server = find_server(settings.project_dir)
    for definition in _ours(server, settings):
        if definition["name"] == name:
            removed = _describe(server, definition)
            server.call("DELETE", f"scheduler/job_definitions/{definition['job_definition_id']}")
            (settings.state_dir / "schedules" / f"{name}.ipynb").unlink(missing_ok=True)
            return removed
    names = ", ".join(d["name"] for d in _ours(server, settings)) or "none"
    raise ScheduleError(f"no schedule named {name!r} (this project's: {names})")


def format_schedules(items: list[Schedule]) -> str:
    from ..table import format_rows

    if not items:
        return "no schedules (jupyter mlops schedule PIPELINE --cron ... or monitor DEPLOYMENT)"
    rows = [
        [
            s.name, s.kind, s.target, s.cron, s.next_run or "paused",
            f"{s.last_status} {s.last_run}".strip() or "-",
        ]
        for s in items
    ]  # fmt: skip
    return format_rows(["name", "kind", "target", "cron (UTC)", "next run", "last run"], rows)
