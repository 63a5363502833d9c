"""Reading tracked runs back: what ``%mlops runs``, the CLI and the REST layer show."""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .. import store
from ..config import Settings
from ..exceptions import MlopsError, NotFoundError
from ..table import format_rows
from .journal import DrainState, JournalPaths, Record, is_locked, journals, read_records
from .live import LiveCell, read_live
from .preview import describe
from .stale import FlowRun, compute, flow_from_tags, project_files


@dataclass
class CellRun:
    """One tracked cell run, as every door renders it."""

    #: empty while the record is still in the journal
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
    record_id: str | None = None
    session_run_id: str | None = None
    cell_id: str | None = None
    end_time: int | None = None
    #: still in the kernel's journal, not yet in the store
    pending: bool = False
    #: the cell's own ``# mlops: <label>``; then ``source_preview`` is that label
    label: str | None = None
    #: where a failed cell stopped: the line in the cell, its code, the function of the
    #: cell it was in (None: the top level), and the last frames of the traceback
    error_line: int | None = None
    error_code: str | None = None
    error_where: str | None = None
    error_traceback: str | None = None
    #: its inputs changed since it ran (None: its dataflow is unknown or was not recorded)
    stale: bool | None = None
    #: why it is stale, or why its dataflow is unknown
    stale_reason: str | None = None
    #: a running cell's metrics so far, name -> [[step, value], ...] (None once it ended)
    history: dict[str, list[list[float]]] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _count(value: Any) -> str | None:
    return None if value is None or str(value) == "None" else str(value)


def _error_text(kind: Any, message: Any) -> str:
    """``ZeroDivisionError: division by zero``; a bare ``KeyboardInterrupt`` has no colon."""
    kind, message = str(kind or "").strip(), str(message or "").strip()
    return f"{kind}: {message}" if kind and message else kind or message


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _cell_run(run: Any, experiment: str) -> CellRun:
    tags = run.data.tags
    metrics = dict(run.data.metrics)
    duration = metrics.pop("mlops.duration_s", None)
    error = None
    if tags.get("mlops.error_type"):
        error = _error_text(tags["mlops.error_type"], tags.get("mlops.error_message"))
    # from the source when it is at hand, so runs stored before the preview rules get them
    source = tags.get("mlops.source")
    if source is not None:
        preview, label = describe(source)
    else:
        preview, label = tags.get("mlops.source_preview", ""), tags.get("mlops.label")
    return CellRun(
        run_id=run.info.run_id,
        experiment=experiment,
        execution_count=_count(tags.get("mlops.execution_count")),
        status=run.info.status,
        start_time=run.info.start_time,
        duration_s=duration,
        source_preview=preview,
        params=dict(run.data.params),
        metrics=metrics,
        error=error,
        record_id=tags.get("mlops.record_id"),
        session_run_id=tags.get("mlflow.parentRunId"),
        cell_id=tags.get("mlops.cell_id"),
        end_time=run.info.end_time,
        label=label,
        error_line=_int(tags.get("mlops.error_line")),
        error_code=tags.get("mlops.error_code"),
        error_where=tags.get("mlops.error_where"),
        error_traceback=tags.get("mlops.error_traceback"),
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


# -- one notebook's runs, page by page (the sidebar) -------------------------------------------


@dataclass
class SessionRun:
    """A kernel session of a notebook."""

    run_id: str
    status: str
    start_time: int
    end_time: int | None
    name: str
    kernel_pid: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RunsPage:
    """One page of a notebook's cell runs, newest first."""

    notebook: str
    experiment: str
    experiment_id: str | None
    runs: list[CellRun]
    next_page_token: str | None = None
    sessions: list[SessionRun] = field(default_factory=list)
    pending: list[CellRun] = field(default_factory=list)
    #: a running kernel tracks this notebook (``%load_ext`` ran), even before its first cell
    tracking: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _pending_cell(record: Record, experiment: str, session_run_id: str | None) -> CellRun:
    error = record.get("error") or None
    metrics: dict[str, float] = {}
    for name, value, *_ in record.get("metrics") or []:
        metrics[str(name)] = float(value)  # the last value of a name wins, as in MLflow
    preview, label = describe(str(record.get("source", "")))
    where = error if isinstance(error, dict) else {}
    return CellRun(
        run_id="",
        experiment=experiment,
        execution_count=_count(record.get("execution_count")),
        status=str(record.get("status", "FINISHED")),
        start_time=int(record.get("start", 0)),
        duration_s=record.get("duration_s"),
        source_preview=preview,
        params={str(k): str(v) for k, v in (record.get("params") or {}).items()},
        metrics=metrics,
        error=_error_text(where.get("type"), where.get("message")) if where else None,
        record_id=record.get("id"),
        session_run_id=session_run_id,
        cell_id=record.get("cell_id"),
        end_time=record.get("end"),
        pending=True,
        label=label,
        error_line=_int(where.get("line")),
        error_code=where.get("code"),
        error_where=where.get("where"),
        error_traceback=where.get("traceback"),
    )


def _running_cell(cell: LiveCell, experiment: str, session_run_id: str | None) -> CellRun:
    return CellRun(
        run_id="",
        experiment=experiment,
        execution_count=None,
        status="RUNNING",
        start_time=cell.start,
        duration_s=None,
        source_preview=cell.source_preview,
        metrics=cell.metrics,
        record_id=cell.record_id,
        session_run_id=session_run_id,
        cell_id=cell.cell_id,
        pending=True,
        label=cell.label,
        history=cell.history,
    )


def _journal_sessions(
    settings: Settings, experiment: str
) -> Iterator[tuple[JournalPaths, DrainState, list[Record], bool]]:
    """Each journal of a session of ``experiment``: its files, its drain state, its records
    not yet drained, and whether the session is still open (its kernel holds the lock)."""
    for paths in journals(settings.journal_dir):
        state = DrainState.load(paths.state)
        records = [r for _, r in read_records(paths.journal, state.offset)]
        session = state.session or next(
            (r for r in records if r.get("type") == "session_start"), {}
        )
        # a move not yet drained already counts: the sidebar asks by the new path
        moves = [r for r in records if r.get("type") == "session_move"]
        if (moves[-1] if moves else session).get("experiment") != experiment:
            continue
        ended = state.session_ended or any(r.get("type") == "session_end" for r in records)
        # probe only a lock that exists: creating one would change the runs' ETag
        live = not ended and paths.kernel_lock.exists() and is_locked(paths.kernel_lock)
        yield paths, state, records, live


def pending_cells(
    settings: Settings, experiment: str, flows: list[FlowRun | None] | None = None
) -> list[CellRun]:
    """Cell records of ``experiment``'s sessions still in a journal, newest first.

    Only reads: the journal and its drain state belong to the drainer. ``flows`` receives
    each record's dataflow, for staleness.
    """
    out: list[CellRun] = []
    for paths, state, records, live in _journal_sessions(settings, experiment):
        cells = [r for r in records if r.get("type") == "cell" and r.get("id") not in state.pending]
        out += [_pending_cell(r, experiment, state.session_run_id) for r in cells]
        running = read_live(paths.live) if live else None
        # the thread that removes the file lags the record by up to half a second
        if running is not None and running.record_id not in {r.get("id") for r in records}:
            out.append(_running_cell(running, experiment, state.session_run_id))
        if flows is not None:
            flows += [_record_flow(r) for r in cells]
    out.sort(key=lambda c: c.start_time, reverse=True)
    return out


def pending_flows(settings: Settings, session_run_id: str) -> list[FlowRun]:
    """The dataflow of the cell records of one session run still in a journal."""
    out = []
    for paths in journals(settings.journal_dir):
        state = DrainState.load(paths.state)
        if state.session_run_id != session_run_id:
            continue
        for _, record in read_records(paths.journal, state.offset):
            flow = _record_flow(record) if record.get("type") == "cell" else None
            if flow is not None:
                out.append(flow)
    return out


def _record_flow(record: Record) -> FlowRun | None:
    return flow_from_tags(
        record.get("tags") or {},
        record_id=record.get("id"),
        start=int(record.get("start", 0)),
        cell_id=record.get("cell_id"),
        source_hash=str(record.get("source_hash", "")),
        execution_count=_count(record.get("execution_count")),
        source=str(record.get("source", "")),
    )


def run_flow(run: Any) -> FlowRun | None:
    tags = run.data.tags
    return flow_from_tags(
        tags,
        record_id=tags.get("mlops.record_id"),
        start=int(run.info.start_time or 0),
        cell_id=tags.get("mlops.cell_id"),
        source_hash=tags.get("mlops.source_hash", ""),
        execution_count=_count(tags.get("mlops.execution_count")),
        source=tags.get("mlops.source") or tags.get("mlops.source_preview", ""),
    )


def _mark_stale(rows: list[CellRun], flows: list[FlowRun | None], settings: Settings) -> None:
    """Set ``stale`` and ``stale_reason`` of ``rows`` from the dataflow of the runs at hand
    (a later page does not see what the newer runs of the first one changed) and the
    project's files as they are now."""
    states = compute((f for f in flows if f is not None), project_files(settings))
    for row in rows:
        state = states.get(row.record_id or "")
        if state is not None:
            row.stale, row.stale_reason = state.stale, state.reason


def is_tracking(settings: Settings, experiment: str) -> bool:
    """Whether a running kernel tracks the notebook of ``experiment`` right now."""
    return any(live for *_, live in _journal_sessions(settings, experiment))


def _mlflow_error(err: Exception) -> MlopsError:
    code = getattr(err, "error_code", "")
    message = getattr(err, "message", str(err))
    if code == "RESOURCE_DOES_NOT_EXIST":
        return NotFoundError(message)
    return MlopsError(message)


def _session_run(run: Any) -> SessionRun:
    return SessionRun(
        run_id=run.info.run_id,
        status=run.info.status,
        start_time=run.info.start_time,
        end_time=run.info.end_time,
        name=run.info.run_name or "",
        kernel_pid=run.data.tags.get("mlops.kernel_pid"),
    )


def notebook_runs(
    settings: Settings,
    notebook: str,
    experiment: str,
    *,
    limit: int = 50,
    page_token: str | None = None,
) -> RunsPage:
    """A page of the runs of ``experiment`` (a notebook's), newest first.

    A page holds up to ``limit`` runs of the notebook: its cell runs in ``runs`` and the
    sessions among them in ``sessions``. The first page (no ``page_token``) also carries
    the records still on their way from the kernel's journal, so a finished cell shows at
    once.

    >>> notebook_runs(settings, "train.ipynb", "train.ipynb", limit=20)  # doctest: +SKIP
    """
    from mlflow.exceptions import MlflowException

    if not 1 <= limit <= 1000:
        raise MlopsError(f"limit must be between 1 and 1000, got {limit}")
    first_page = not page_token
    # the journal before the store: a record drained in between then shows twice (and is
    # dropped below by its record id) rather than not at all
    flows: list[FlowRun | None] = []
    pending = pending_cells(settings, experiment, flows) if first_page else []
    tracking = is_tracking(settings, experiment)
    client = store.client(settings)
    found = client.get_experiment_by_name(experiment)
    if found is None or found.lifecycle_stage == "deleted":
        _mark_stale(pending, flows, settings)
        return RunsPage(notebook, experiment, None, [], None, [], pending, tracking)
    try:
        # no filter on the kind tag: with MLflow's SQL store that join costs ~3x the page
        # on 10,000 runs, and a notebook's experiment holds only its sessions and cells
        runs = client.search_runs(
            [found.experiment_id],
            max_results=limit,
            order_by=["attributes.start_time DESC"],
            page_token=page_token or None,
        )
    except MlflowException as err:
        raise _mlflow_error(err) from None
    kinds = [r.data.tags.get("mlops.kind") for r in runs]
    cells = [_cell_run(r, experiment) for r, k in zip(runs, kinds, strict=True) if k == "cell"]
    sessions = [_session_run(r) for r, k in zip(runs, kinds, strict=True) if k == "session"]
    stored = {c.record_id for c in cells}
    pending = [p for p in pending if p.record_id not in stored]
    flows += [run_flow(r) for r, k in zip(runs, kinds, strict=True) if k == "cell"]
    _mark_stale(cells + pending, flows, settings)
    token = runs.token.decode() if isinstance(runs.token, bytes) else runs.token
    return RunsPage(
        notebook,
        experiment,
        str(found.experiment_id),
        cells,
        token or None,
        sessions,
        pending,
        tracking,
    )


def change_marker(settings: Settings, *parts: str) -> str | None:
    """A tag that changes whenever the embedded store or a journal changes.

    Built from file metadata only, so a poller learns "nothing new" without a query.
    None for a remote store, whose changes no local file shows.
    """
    db = store.sqlite_path(settings.tracking_uri)
    if db is None:
        return None
    digest = hashlib.sha1("\0".join(parts).encode())
    files = [db, db.with_name(db.name + "-wal")]
    if settings.journal_dir.is_dir():
        files += sorted(settings.journal_dir.iterdir())
    for path in files:
        try:
            st = path.stat()
        except OSError:
            continue
        digest.update(f"{path.name}:{st.st_mtime_ns}:{st.st_size};".encode())
    return digest.hexdigest()


# -- one run in full ---------------------------------------------------------------------------


@dataclass
class RunDetail(CellRun):
    """Everything about one run, with a cell's full source."""

    kind: str = ""
    name: str = ""
    source: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    datasets: list[dict[str, Any]] = field(default_factory=list)
    artifacts: list[str] = field(default_factory=list)


def _dataset(inp: Any) -> dict[str, Any]:
    rows = None
    try:
        rows = json.loads(inp.dataset.profile or "{}").get("num_rows")
    except ValueError:
        pass
    return {"name": inp.dataset.name, "digest": inp.dataset.digest, "rows": rows}


def run_detail(settings: Settings, run_id: str) -> RunDetail:
    """One run with its tags, inputs, artifacts and (for a cell) its full source."""
    from mlflow.exceptions import MlflowException

    client = store.client(settings)
    try:
        run = client.get_run(run_id)
    except MlflowException as err:
        error = _mlflow_error(err)
        if isinstance(error, NotFoundError) or "not found" in str(err).lower():
            raise NotFoundError(f"no run {run_id!r} in {settings.tracking_uri}") from None
        raise error from None
    experiment = client.get_experiment(run.info.experiment_id)
    base = _cell_run(run, experiment.name if experiment else "")
    tags = dict(run.data.tags)
    source = tags.pop("mlops.source", None)
    artifact = tags.get("mlops.source_artifact")
    if source is None and artifact:
        with tempfile.TemporaryDirectory() as tmp:
            try:
                source = Path(client.download_artifacts(run_id, artifact, tmp)).read_text(
                    encoding="utf-8"
                )
            except (MlflowException, OSError):
                source = None
    inputs = getattr(run, "inputs", None)
    datasets = [_dataset(d) for d in (getattr(inputs, "dataset_inputs", None) or [])]
    try:
        artifacts = [f.path for f in client.list_artifacts(run_id)]
    except (MlflowException, OSError):
        artifacts = []
    return RunDetail(
        **asdict(base),
        kind=tags.get("mlops.kind", ""),
        name=run.info.run_name or "",
        source=source,
        tags=tags,
        datasets=datasets,
        artifacts=artifacts,
    )
