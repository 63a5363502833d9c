"""``CellRecorder``: the IPython hooks that turn every cell run into a journal record.

Only cheap work happens here, on the kernel's thread: a clock read before the cell; after
it, the AST of the cell (cached), a snapshot of the names it bound, one JSON line appended
to the journal. Any failure is caught and shown once; the user's cell is never affected.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import os
import re
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..config import TrackingSettings
from .bindings import BeforeCell, bound_by_cell, failing_line
from .capture import MetricNamer, bound_names, snapshot
from .dataflow import DataflowTracker, analyse
from .errors import error_details
from .files import FileWatch
from .journal import JournalWriter, Record
from .redact import MASK, Redactor

#: what MLflow accepts as a metric or param name
_VALID_KEY = re.compile(r"^[\w\-./ ]{1,250}$")
#: cell magics that mark a cell as untracked
_SKIP_PREFIX = "%%mlops skip"


@dataclass
class _CellInFlight:
    start: float
    perf: float
    raw: str
    cell_id: str | None
    skip: bool
    names: tuple[str, ...] = ()
    before: BeforeCell | None = None
    record_id: str = field(default_factory=lambda: os.urandom(16).hex())
    params: dict[str, Any] = field(default_factory=dict)
    metrics: list[list[Any]] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


def _millis(t: float) -> int:
    return int(t * 1000)


def _status(result: Any) -> tuple[str, dict[str, str] | None]:
    if result is None:
        return "KILLED", {"type": "Cancelled", "message": "the cell was cancelled"}
    err = getattr(result, "error_before_exec", None) or getattr(result, "error_in_exec", None)
    if err is None:
        return "FINISHED", None
    status = "KILLED" if isinstance(err, KeyboardInterrupt) else "FAILED"
    return status, {"type": type(err).__name__, "message": str(err)[:1000]}


class CellRecorder:
    """Records cell runs of one kernel session into its journal."""

    def __init__(
        self,
        shell: Any,
        journal: JournalWriter,
        session_id: str,
        settings: TrackingSettings,
        *,
        enabled: bool = True,
        files: FileWatch | None = None,
    ) -> None:
        self.shell = shell
        self.journal = journal
        self.session_id = session_id
        self.enabled = enabled
        self._settings = settings
        self._is_metric = MetricNamer(settings.metric_pattern, settings.metrics)
        #: secrets are masked here, before the journal: what never reaches disk cannot leak
        self.redactor = Redactor(settings)
        #: which run last wrote each name, for the reads of the next cells
        self.dataflow = DataflowTracker()
        #: the project files each cell opens; None when ``tracking.files`` is off
        self.files = files
        self._transform: Callable[[str], str] | None = getattr(shell, "transform_cell", None)
        self._depth = 0
        self._current: _CellInFlight | None = None
        self._metric_steps: dict[str, int] = {}
        self.recent: deque[Record] = deque(maxlen=500)
        self.recorded = 0
        self._warnings: list[str] = []
        self._recording_failed = False
        self._waiting_told = False
        self._dropped_told = 0
        self._dropped_at_wait = 0

    # -- hooks ------------------------------------------------------------------------
    def register(self) -> None:
        self.shell.events.register("pre_run_cell", self.pre_run_cell)
        self.shell.events.register("post_run_cell", self.post_run_cell)

    def unregister(self) -> None:
        for name, hook in (
            ("pre_run_cell", self.pre_run_cell),
            ("post_run_cell", self.post_run_cell),
        ):
            try:
                self.shell.events.unregister(name, hook)
            except ValueError:
                pass

    def pre_run_cell(self, info: Any) -> None:
        self._depth += 1
        if self._depth > 1:  # a cell run from inside a cell (a magic): part of the outer one
            return
        try:
            raw = info.raw_cell or ""
            cell = _CellInFlight(
                start=time.time(),
                perf=time.perf_counter(),
                raw=raw,
                cell_id=getattr(info, "cell_id", None),
                skip=not self.enabled or raw.lstrip().startswith(_SKIP_PREFIX),
            )
            self._current = cell
            if not cell.skip:
                # the values the cell may rebind, so that only what it did bind is recorded
                cell.names = bound_names(raw, self._transform)
                cell.before = BeforeCell(cell.names, self.shell.user_ns)
                if self.files is not None:
                    self.files.start()
        except Exception as err:
            self._fail(err)

    def post_run_cell(self, result: Any) -> None:
        if self._depth == 0:  # the cell that loaded us: we saw no start
            return
        self._depth -= 1
        if self._depth > 0:
            return
        cell, self._current = self._current, None
        try:
            if cell is not None and not cell.skip:
                self._record(cell, result)
        except Exception as err:
            self._fail(err)
        self.show_warnings()

    # -- explicit logging -----------------------------------------------------------------
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> dict[str, str]:
        """Add metrics to the running cell's record; the names not logged, with why."""
        cell = self._current
        if cell is None:
            return {}
        before = dict(cell.skipped)
        now = _millis(time.time())
        for name, value in metrics.items():
            if not _VALID_KEY.match(name):
                cell.skipped[name] = "not a valid metric name"
                continue
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                cell.skipped[name] = f"not a number ({type(value).__name__})"
                continue
            number = float(value)
            if not math.isfinite(number):
                cell.skipped[name] = f"not a finite number ({number})"
                continue
            cell.metrics.append([name, number, self._step(name, step), now])
        return {k: v for k, v in cell.skipped.items() if before.get(k) != v}

    def log_params(self, params: Mapping[str, Any]) -> dict[str, str]:
        """Add params to the running cell's record; the names not logged, with why."""
        cell = self._current
        if cell is None:
            return {}
        before = dict(cell.skipped)
        for name, value in params.items():
            if not _VALID_KEY.match(name):
                cell.skipped[name] = "not a valid param name"
                continue
            text = str(value)
            if len(text) > self._settings.max_param_length:
                cell.skipped[name] = (
                    f"value of {len(text)} characters (limit {self._settings.max_param_length})"
                )
                continue
            if self.redactor.is_secret(name, text):
                self.redactor.masked += 1
                self.warn(f"log_params: {name!r} looks like a secret; logged as {MASK!r}")
                text = MASK
            cell.params[name] = value if isinstance(value, (bool, int, float)) else text
        return {k: v for k, v in cell.skipped.items() if before.get(k) != v}

    def set_tags(self, tags: Mapping[str, str]) -> None:
        """Tags for the session run, written at once."""
        masked = {k: self.redactor.mask_text(str(v)) for k, v in tags.items()}
        self.journal.append({"type": "session_tags", "session": self.session_id, "tags": masked})
        self.journal_notices()

    def save_waiting(self) -> bool:
        """Write records that wait in memory for the disk; True when none is left."""
        done = self.journal.retry()
        self.journal_notices()
        return done

    def journal_notices(self) -> None:
        """One notice when records start to wait for the disk, one when they are saved."""
        journal = self.journal
        if journal.waiting and not self._waiting_told:
            self._waiting_told = True
            self._dropped_at_wait = journal.dropped
            self.warn(
                f"cannot write the tracking journal ({journal.error}). Your cells run as "
                f"usual; {len(journal.waiting)} record(s) wait in memory (up to "
                f"{journal.max_waiting}) and are saved as soon as the disk takes them "
                "(next cell, %mlops flush or shutdown). %mlops status counts them."
            )
        if journal.dropped > self._dropped_told:
            self.warn(
                f"{journal.dropped - self._dropped_told} tracking record(s) dropped: more "
                f"than {journal.max_waiting} were waiting for the disk"
            )
            self._dropped_told = journal.dropped
        if not journal.waiting and self._waiting_told:
            self._waiting_told = False
            dropped = journal.dropped - self._dropped_at_wait
            self.warn(
                "the tracking journal is writable again: "
                f"{journal.waited - dropped} waiting record(s) saved"
                + (f", {dropped} dropped" if dropped else "")
            )

    @property
    def running(self) -> _CellInFlight | None:
        """The cell running now, outermost; read by the live view's thread."""
        return self._current

    @property
    def current_record_id(self) -> str | None:
        """Id of the record the running cell will become (tag ``mlops.record_id``)."""
        return self._current.record_id if self._current is not None else None

    def is_metric(self, name: str) -> bool:
        return self._is_metric(name)

    # -- internals ----------------------------------------------------------------------
    def _step(self, name: str, step: int | None) -> int:
        if step is None:
            step = self._metric_steps.get(name, 0)
        self._metric_steps[name] = max(self._metric_steps.get(name, 0), int(step) + 1)
        return int(step)

    def _record(self, cell: _CellInFlight, result: Any) -> None:
        end = time.time()
        duration = time.perf_counter() - cell.perf
        files = self.files.stop() if self.files is not None else []
        status, error = _status(result)
        err = getattr(result, "error_in_exec", None)
        namespace = self.shell.user_ns
        names = bound_by_cell(
            cell.names,
            cell.raw,
            cell.before,
            namespace,
            finished=status == "FINISHED",
            stopped_at=failing_line(err, getattr(self.shell, "user_global_ns", namespace)),
        )
        redactor = self.redactor
        captured = snapshot(
            names, namespace, self._is_metric, self._settings.max_param_length, redactor
        )
        # after the snapshot, which remembers the secret values it met, so the source is
        # masked for those too
        source = redactor.mask_source(cell.raw)
        if error:
            raised = getattr(result, "error_before_exec", None) or err
            if isinstance(raised, BaseException):
                cell_globals = getattr(self.shell, "user_global_ns", namespace)
                where = error_details(raised, cell_globals, source)
                for key in ("code", "traceback"):
                    if key in where:
                        where[key] = redactor.mask_text(where[key])
                error.update(where)
            error["message"] = redactor.mask_text(error["message"])
        explicit = {m[0] for m in cell.metrics}
        end_ms = _millis(end)
        metrics = cell.metrics + [
            [name, value, self._step(name, None), end_ms]
            for name, value in captured.metrics.items()
            if name not in explicit
        ]
        record: Record = {
            "type": "cell",
            "id": cell.record_id,
            "session": self.session_id,
            "start": _millis(cell.start),
            "end": end_ms,
            "time": end_ms,
            "duration_s": round(duration, 6),
            "execution_count": getattr(result, "execution_count", None),
            "cell_id": cell.cell_id,
            "source": source,
            "source_hash": hashlib.sha1(source.encode()).hexdigest(),
            "status": status,
            "params": {**captured.params, **cell.params},
            "metrics": metrics,
        }
        if error:
            record["error"] = error
        if captured.datasets:
            record["datasets"] = captured.datasets
        if files:
            record["files"] = files
        skipped = {**captured.skipped, **cell.skipped}
        if skipped:
            record["skipped"] = skipped
        if cell.tags:
            record["tags"] = {k: redactor.mask_text(str(v)) for k, v in cell.tags.items()}
        record["tags"] = {**record.get("tags", {}), **self._dataflow_tags(cell, record, names)}
        self.journal.append(record)
        self.recorded += 1
        self.recent.append(record)
        self.journal_notices()

    def _dataflow_tags(
        self, cell: _CellInFlight, record: Record, names: list[str]
    ) -> dict[str, str]:
        """What the cell read and wrote, and the runs that wrote what it read; a failure
        here marks the run "dataflow unknown" and touches nothing else."""
        try:
            flow = analyse(cell.raw, self._transform)
            # a failed cell bound what it got past; names capture does not follow (def,
            # import, for) are counted as bound
            bound = None
            if record["status"] != "FINISHED":
                bound = [*names, *(n for n in flow.binds if n not in cell.names)]
            found = self.dataflow.observe(
                flow,
                record_id=cell.record_id,
                cell_id=cell.cell_id,
                source_hash=record["source_hash"],
                namespace=self.shell.user_ns,
                params=record["params"],
                digests={d["name"]: d["digest"] for d in record.get("datasets", ())},
                bound=bound,
                start=record["start"],
                execution_count=record["execution_count"],
                source=record["source"],
                files=record.get("files", ()),
            )
            return found.tags()
        except Exception as err:
            return {"mlops.dataflow": json.dumps({"unknown": f"analysis failed: {err!r}"[:500]})}

    def _fail(self, err: BaseException) -> None:
        if not self._recording_failed:
            self._recording_failed = True
            self.warn(
                f"could not record a cell ({type(err).__name__}: {err}); your cells run as usual"
            )

    def warn(self, message: str) -> None:
        """Queue a one-line notice, shown after the current (or next) cell."""
        self._warnings.append(message)

    def show_warnings(self) -> None:
        while self._warnings:
            message = self._warnings.pop(0)
            try:
                print(f"jupyter-mlops: {message}", file=sys.stderr)
            except Exception:
                pass
