"""Stale runs: a run whose inputs no longer hold what it read.

A run read each name at a version (``dataflow.DataflowTracker``); it is stale when the run
that now last wrote the name wrote another version (the upstream cell was re-run with new
source or gave a different value, another cell rebound the name, a param changed), or when
a run it read from is itself stale, or when a file it read has changed on disk since. The
same computation serves the kernel (``jupyter_mlops.stale()``, ``%mlops stale``) and the
REST ``runs`` answer, from the runs' ``mlops.dataflow`` tags or journal records.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from .files import FILE_PREFIX, file_version
from .preview import describe

_PREVIEW = 40


@dataclass
class FlowRun:
    """One cell run as staleness sees it."""

    record_id: str
    start: int
    cell_id: str | None = None
    source_hash: str = ""
    execution_count: str | None = None
    source: str = ""
    #: upstream record id -> {name: version read}
    upstream: dict[str, dict[str, str]] = field(default_factory=dict)
    #: name -> version written
    written: dict[str, str] = field(default_factory=dict)
    params: frozenset[str] = frozenset()
    #: project file -> version read, for files no run of the kernel had written
    files: dict[str, str] = field(default_factory=dict)
    #: why its dataflow is unknown; None when known. No dataflow at all: ``known`` False
    unknown: str | None = None
    known: bool = True

    @property
    def preview(self) -> str:
        return _short(describe(self.source)[0]) if self.source else ""


@dataclass
class Staleness:
    """``stale``: True, False, or None when the run's dataflow is unknown."""

    stale: bool | None
    reason: str | None = None


@dataclass
class StaleRun:
    """A cell whose latest run is stale, with why."""

    record_id: str
    cell_id: str | None
    execution_count: str | None
    source_preview: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def flow_from_tags(
    tags: Mapping[str, Any],
    *,
    record_id: str | None,
    start: int,
    cell_id: str | None = None,
    source_hash: str = "",
    execution_count: str | None = None,
    source: str = "",
) -> FlowRun | None:
    """A ``FlowRun`` from a run's tags (or a journal record's), None without a record id."""
    if not record_id:
        return None
    run = FlowRun(
        record_id=record_id,
        start=start,
        cell_id=cell_id,
        source_hash=source_hash,
        execution_count=execution_count,
        source=source,
    )
    raw = tags.get("mlops.dataflow")
    if raw is None:
        run.known = False
        return run
    try:
        body = json.loads(raw)
    except ValueError:
        run.unknown = "its dataflow record was cut short"
        return run
    if "unknown" in body:
        run.unknown = str(body["unknown"])
        return run
    run.upstream = {str(k): dict(v) for k, v in (body.get("u") or {}).items()}
    run.written = dict(body.get("w") or {})
    run.params = frozenset(body.get("p") or ())
    run.files = dict(body.get("f") or {})
    return run


def _short(text: str) -> str:
    return text if len(text) <= _PREVIEW else text[: _PREVIEW - 1] + "…"


def _cell(run: FlowRun) -> str:
    count = f"[{run.execution_count}]" if run.execution_count not in (None, "") else "[ ]"
    return f"cell {count} `{run.preview}`" if run.preview else f"cell {count}"


def _why(name: str, was: FlowRun | None, now: FlowRun) -> str:
    if name.startswith(FILE_PREFIX):
        what = f"file {name[len(FILE_PREFIX) :]}"
    elif name in now.params or (was and name in was.params):
        what = f"param {name}"
    else:
        what = name
    if was is not None and now.cell_id is not None and now.cell_id == was.cell_id:
        if now.source_hash != was.source_hash:
            return f"{what} changed: {_cell(now)} was re-run with new source"
        return f"{what} changed: {_cell(now)} was re-run and gave a different value"
    return f"{what} changed: {_cell(now)} wrote it since"


#: a project file's version now (``files.file_version``), None when it is gone
FileNow = Callable[[str], "str | None"]


def _file_reasons(
    run: FlowRun, file_now: FileNow, latest: Mapping[str, tuple[FlowRun, str]]
) -> list[str]:
    out = []
    for path, version in run.files.items():
        now = file_now(path)
        if now == version:
            continue
        writer = latest.get(FILE_PREFIX + path)
        if writer is not None and writer[0].start > run.start and writer[1] == now:
            out.append(f"file {path} changed: {_cell(writer[0])} wrote it since")
        elif now is None:
            out.append(f"file {path} is gone")
        else:
            out.append(f"file {path} changed since it was read")
    return out


def compute(runs: Iterable[FlowRun], file_now: FileNow | None = None) -> dict[str, Staleness]:
    """Each run's staleness by record id, against the newest write of every name and,
    with ``file_now``, what the files it read hold now."""
    if file_now is not None:
        file_now = functools.lru_cache(maxsize=None)(file_now)
    ordered = sorted(runs, key=lambda r: r.start)
    by_id = {r.record_id: r for r in ordered}
    latest: dict[str, tuple[FlowRun, str]] = {}
    for run in ordered:
        for name, version in run.written.items():
            latest[name] = (run, version)
    out: dict[str, Staleness] = {}
    visiting: set[str] = set()

    def state(run: FlowRun) -> Staleness:
        done = out.get(run.record_id)
        if done is not None:
            return done
        if not run.known:
            return out.setdefault(run.record_id, Staleness(None))
        if run.unknown is not None:
            return out.setdefault(
                run.record_id, Staleness(None, f"dataflow unknown: {run.unknown}")
            )
        visiting.add(run.record_id)
        direct: list[str] = []
        through: list[str] = []
        for up_id, names in run.upstream.items():
            was = by_id.get(up_id)
            for name, version in names.items():
                now = latest.get(name)
                if now is None:
                    continue
                if now[1] != version:
                    direct.append(_why(name, was, now[0]))
                elif now[0].record_id not in visiting:
                    # the same version as now: stale only if what holds it now is
                    upstream = state(now[0])
                    if upstream.stale and not through:
                        through.append(f"it read {name} from stale {_cell(now[0])}")
        visiting.discard(run.record_id)
        if file_now is not None and run.files:
            direct.extend(_file_reasons(run, file_now, latest))
        reasons = direct or through
        if reasons:
            extra = f" (and {len(reasons) - 1} more)" if len(direct) > 1 else ""
            result = Staleness(True, reasons[0] + extra)
        else:
            result = Staleness(False)
        out[run.record_id] = result
        return result

    for run in ordered:
        state(run)
    return out


def stale_cells(runs: Sequence[FlowRun], file_now: FileNow | None = None) -> list[StaleRun]:
    """The cells whose latest run is stale, in the order they last ran."""
    states = compute(runs, file_now)
    latest: dict[str, FlowRun] = {}
    for run in sorted(runs, key=lambda r: r.start):
        latest[run.cell_id or run.record_id] = run
    out = []
    for run in sorted(latest.values(), key=lambda r: r.start):
        state = states.get(run.record_id)
        if state is not None and state.stale:
            out.append(
                StaleRun(
                    run.record_id, run.cell_id, run.execution_count, run.preview, state.reason or ""
                )
            )
    return out


def format_stale(rows: list[StaleRun]) -> str:
    """One line per stale cell, with why (reasons are too long for a table column)."""
    if not rows:
        return "no stale cells: every cell's latest run read what its inputs hold now"
    lines = [f"{len(rows)} stale cell(s):"]
    for r in rows:
        lines.append(f"  [{r.execution_count or ' '}] {r.source_preview}\n      {r.reason}")
    return "\n".join(lines)


def stale() -> list[StaleRun]:
    """The cells of this kernel's session whose latest run is stale, with why.

    >>> [r.reason for r in jupyter_mlops.stale()]  # doctest: +SKIP
    ['param lr changed: cell [5] `lr = 0.2` was re-run with new source']
    """
    from .api import require_session

    session = require_session()
    return stale_cells(list(session.recorder.dataflow.runs), project_files(session.settings))


def project_files(settings: Any) -> FileNow:
    """``file_now`` for the project's files."""
    root = settings.project_dir
    return lambda path: file_version(root / path)
