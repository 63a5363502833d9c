"""Lineage of a name: the cell runs, in the order they ran, whose writes led to its value.

Each cell run records, per name it read, the run that last wrote it (``dataflow``). Walking
those links back from the run that last wrote a name gives the chain of runs that produced
it, with the params they set and the names that flowed between them. The same walk serves
``jupyter_mlops.lineage(...)`` (plain data), ``%mlops lineage`` (a plotly figure) and
``%mlops slice`` (a template holding only those cells).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..exceptions import NotFoundError
from .files import FILE_PREFIX
from .stale import FileNow, FlowRun, Staleness, compute, project_files


@dataclass
class Lineage:
    """What produced ``target``: the chain of cell runs and the names between them."""

    target: str
    #: the chain, oldest first
    runs: list[FlowRun]
    #: (from record id, to record id, names): ``to`` read ``names`` that ``from`` wrote
    edges: list[tuple[str, str, list[str]]]
    #: the runs the chain reads from that this record no longer holds
    missing: list[str] = field(default_factory=list)
    #: runs before the target's writer whose dataflow could not be read: they may matter
    unknown: list[FlowRun] = field(default_factory=list)
    #: each chain run's staleness against everything the session ran since
    states: dict[str, Staleness] = field(default_factory=dict)

    @property
    def params(self) -> list[str]:
        """The params set along the chain, in the order first set (not the target)."""
        seen: dict[str, None] = {}
        for run in self.runs:
            for name in run.written:
                if name in run.params and name != self.target:
                    seen.setdefault(name)
        return list(seen)

    @property
    def files(self) -> list[dict[str, Any]]:
        """The project files the chain read from outside it, with the version each was read
        at and the runs that read it (a file a chain cell wrote is an edge, not an input)."""
        found: dict[str, dict[str, Any]] = {}
        for run in self.runs:
            for path, version in run.files.items():
                entry = found.setdefault(path, {"path": path, "version": version, "read_by": []})
                entry["read_by"].append(run.record_id)
        return list(found.values())

    def to_dict(self) -> dict[str, Any]:
        states = self.states
        return {
            "target": self.target,
            "cells": [
                {
                    "record_id": r.record_id,
                    "cell_id": r.cell_id,
                    "execution_count": r.execution_count,
                    "source": r.source,
                    "writes": [n for n in r.written if not n.startswith(FILE_PREFIX)],
                    "files_read": [
                        *r.files,
                        *(
                            n[len(FILE_PREFIX) :]
                            for names in r.upstream.values()
                            for n in names
                            if n.startswith(FILE_PREFIX)
                        ),
                    ],
                    "files_written": [
                        n[len(FILE_PREFIX) :] for n in r.written if n.startswith(FILE_PREFIX)
                    ],
                    "params": sorted(r.params),
                    "stale": states[r.record_id].stale if r.record_id in states else None,
                    "stale_reason": states[r.record_id].reason if r.record_id in states else None,
                }
                for r in self.runs
            ],
            "edges": [{"from": a, "to": b, "names": names} for a, b, names in self.edges],
            "params": self.params,
            "files": self.files,
            "missing": list(self.missing),
            "dataflow_unknown": [r.record_id for r in self.unknown],
        }

    def describe(self) -> str:
        """A few lines a person reads: the chain in run order, with what each cell set."""
        lines = [f"{self.target} comes from {len(self.runs)} cell run(s), in the order they ran:"]
        for run in self.runs:
            count = run.execution_count if run.execution_count not in (None, "") else " "
            wrote = ", ".join(_label(n, run) for n in run.written if n)
            read = ", ".join(f"file {p}" for p in run.files)
            lines.append(
                f"  [{count}] {run.preview}   "
                + (f"<- {read} " if read else "")
                + f"-> {wrote or 'nothing'}"
            )
        state = self.states.get(self.runs[-1].record_id)
        if state is not None and state.stale:
            lines.append(f"  stale: {state.reason}")
        if self.missing:
            lines.append(
                f"  ({len(self.missing)} earlier run(s) it read from are no longer in this "
                "session's record)"
            )
        if self.unknown:
            lines.append(
                f"  ({len(self.unknown)} earlier cell(s) ran code whose dataflow cannot be "
                "read, e.g. exec(); they may matter too)"
            )
        return "\n".join(lines)

    def figure(self) -> Any:
        """The chain as a left-to-right graph: a cell's column is its depth from the inputs."""
        import plotly.graph_objects as go

        files = self.files
        # the files read from outside the chain stand in a first column of their own
        first = 1 if files else 0
        depth: dict[str, int] = {}
        for run in self.runs:  # oldest first, so every upstream run already has its depth
            ups = [depth[u] for u in run.upstream if u in depth]
            depth[run.record_id] = 1 + max(ups) if ups else first
        rows: dict[int, int] = {0: len(files)} if files else {}
        place: dict[str, tuple[int, int]] = {
            FILE_PREFIX + f["path"]: (0, i) for i, f in enumerate(files)
        }
        for run in self.runs:
            d = depth[run.record_id]
            place[run.record_id] = (d, rows.get(d, 0))
            rows[d] = rows.get(d, 0) + 1
        fig = go.Figure()
        file_edges: list[tuple[str, str, list[str]]] = [
            (FILE_PREFIX + f["path"], r, []) for f in files for r in f["read_by"]
        ]
        for a, b, names in [*file_edges, *self.edges]:
            (x0, y0), (x1, y1) = place[a], place[b]
            fig.add_trace(
                go.Scatter(
                    x=[x0, x1],
                    y=[-y0, -y1],
                    mode="lines",
                    line={"color": "#9e9e9e", "width": 1.5},
                    hoverinfo="text",
                    text=", ".join(names),
                    showlegend=False,
                )
            )
            fig.add_annotation(
                x=(x0 + x1) / 2,
                y=-(y0 + y1) / 2,
                text=", ".join(names)[:30],
                showarrow=False,
                font={"size": 10, "color": "#616161"},
            )
        states = self.states
        labels, colours, hovers, xs, ys = [], [], [], [], []
        for run in self.runs:
            x, y = place[run.record_id]
            xs.append(x)
            ys.append(-y)
            count = run.execution_count if run.execution_count not in (None, "") else " "
            labels.append(f"[{count}] {run.preview}")
            hovers.append(run.source[:400].replace("\n", "<br>"))
            state = states.get(run.record_id)
            if run.record_id == self.runs[-1].record_id:
                colours.append("#1976d2")
            elif state is not None and state.stale:
                colours.append("#f57c00")
            elif run.params & set(run.written):
                colours.append("#388e3c")
            else:
                colours.append("#757575")
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="markers+text",
                marker={"size": 14, "color": colours},
                text=labels,
                textposition="top center",
                hovertext=hovers,
                hoverinfo="text",
                showlegend=False,
            )
        )
        if files:
            fig.add_trace(
                go.Scatter(
                    x=[0] * len(files),
                    y=[-i for i in range(len(files))],
                    mode="markers+text",
                    marker={"size": 13, "color": "#8d6e63", "symbol": "square"},
                    text=[f["path"] for f in files],
                    textposition="top center",
                    hovertext=[f"file {f['path']}, read at {f['version']}" for f in files],
                    hoverinfo="text",
                    showlegend=False,
                )
            )
        fig.update_layout(
            title=f"lineage of {self.target} (blue: its cell, green: sets a param, orange: stale"
            + (", brown: a file read)" if files else ")"),
            # room around the nodes for their labels, which stand above them
            xaxis={"visible": False, "range": [-0.6, max(depth.values(), default=0) + 0.6]},
            yaxis={"visible": False, "range": [-max(rows.values(), default=1) + 0.5, 0.6]},
            height=140 + 80 * max(rows.values(), default=1),
            margin={"l": 20, "r": 20, "t": 50, "b": 20},
            template="plotly_white",
        )
        return fig


def _label(name: str, run: FlowRun) -> str:
    if name.startswith(FILE_PREFIX):
        return f"file {name[len(FILE_PREFIX) :]}"
    return f"param {name}" if name in run.params else name


def chain(
    runs: Sequence[FlowRun], record_id: str, target: str, file_now: FileNow | None = None
) -> Lineage:
    """The runs that ``record_id``'s run depends on (itself included), oldest first;
    ``file_now`` checks the files they read against the disk for staleness."""
    by_id = {r.record_id: r for r in runs}
    if record_id not in by_id:
        raise NotFoundError(f"the run that wrote {target!r} is no longer in this record")
    seen: set[str] = set()
    missing: set[str] = set()
    stack = [record_id]
    while stack:
        rid = stack.pop()
        if rid in seen or rid in missing:
            continue
        run = by_id.get(rid)
        if run is None:
            missing.add(rid)
            continue
        seen.add(rid)
        stack.extend(run.upstream)
    ordered = sorted((by_id[r] for r in seen), key=lambda r: r.start)
    edges = [
        (up, run.record_id, sorted(names))
        for run in ordered
        for up, names in run.upstream.items()
        if up in seen
    ]
    last = by_id[record_id].start
    unknown = [r for r in runs if r.unknown is not None and r.start < last]
    states = compute(runs, file_now)
    return Lineage(
        target,
        ordered,
        edges,
        sorted(missing),
        unknown,
        {r: states[r] for r in seen if r in states},
    )


def writer_of(name: str, writers: Mapping[str, Any], known: Iterable[str] = ()) -> str:
    """The record id of the run that last wrote ``name``; a clear error when none did."""
    if not name.isidentifier():
        raise NotFoundError(f"{name!r} is not a Python name")
    writer = writers.get(name)
    if writer is None:
        hint = ", ".join(sorted(known)[:8])
        raise NotFoundError(
            f"no tracked cell wrote {name!r} in this session; run the cell that defines it "
            "with tracking on" + (f" (names written so far: {hint})" if hint else "")
        )
    return str(writer.record_id)


def lineage(name: str) -> dict[str, Any]:
    """What produced ``name``: a variable of this kernel, or a registered model as
    ``MODEL@ALIAS`` / ``MODEL/VERSION`` (through the cell that packaged it); the cells,
    params and files, as plain data.

    >>> jupyter_mlops.lineage("model")["params"]  # doctest: +SKIP
    ['lr', 'epochs']
    >>> jupyter_mlops.lineage("digits@champion")["files"]  # doctest: +SKIP
    [{'path': 'data/train.csv', 'version': '10240:1764844800000000000', 'read_by': [...]}]
    """
    return name_lineage(name).to_dict()


def name_lineage(name: str) -> Lineage:
    """``lineage(name)`` as an object, for the figure and the slice."""
    if "@" in name or "/" in name:
        from ..config import load_settings
        from ..registry.model_lineage import model_lineage
        from .api import active_session

        session = active_session()
        return model_lineage(session.settings if session else load_settings(), name)
    from .api import require_session

    session = require_session()
    flow = session.recorder.dataflow
    known = [n for n in flow.writers if not n.startswith(FILE_PREFIX)]
    record_id = writer_of(name, flow.writers, known)
    return chain(list(flow.runs), record_id, name, project_files(session.settings))
