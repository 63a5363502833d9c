"""Turns journal records into MLflow runs. Runs in the drainer, never in the kernel.

Two kinds of journal: a kernel session's (``session_start``, ``cell``, ... records, cells
nested under the session run) and one of plain ``run`` records, which a process that is not
a kernel writes (a fully cached pipeline run from the command line): each names its
experiment and, by record id, its parent.

Exactly once: every run carries its record's id (``mlops.record_id``, or ``mlops.session_id``
for a session run) as a tag written in the same call that creates the run, so the store
itself can say which records already have a run. A drainer that starts, or that retries
after a failure, first asks the store (``reconcile``) instead of trusting what it remembered:
a finished run is skipped, an unfinished one is completed, a missing one is created. Every
later write (params, metrics, inputs, artifacts, termination) is idempotent in MLflow.
"""

from __future__ import annotations

import importlib.metadata
import json
import platform
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import store
from ..config import Settings
from ..vcs import git_commit
from .files import content_digest, file_version
from .journal import DrainState, Record
from .preview import describe
from .redact import Redactor

# MLflow's log_batch limits per call
_MAX_PARAMS = 100
_MAX_METRICS = 1000
_MAX_TAG = 8000
_PREVIEW = 120

_PANDAS_TO_MLFLOW = {
    "int64": "long",
    "int32": "integer",
    "int16": "integer",
    "int8": "integer",
    "uint8": "integer",
    "uint16": "integer",
    "uint32": "long",
    "float64": "double",
    "float32": "float",
    "bool": "boolean",
    "object": "string",
    "string": "string",
    "category": "string",
}

_VERSIONED_PACKAGES = ("mlflow", "ipykernel", "numpy", "pandas", "scikit-learn", "torch")


def environment_tags(settings: Settings, notebook: str | None) -> dict[str, str]:
    """Python, key package versions and the git commit of the project."""
    tags = {"mlops.python": platform.python_version()}
    for dist in _VERSIONED_PACKAGES:
        try:
            tags[f"mlops.version.{dist}"] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    commit = git_commit(Path(notebook).parent if notebook else settings.project_dir)
    if commit:
        tags["mlflow.source.git.commit"] = commit
    return tags


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _mlflow_type(dtype: str) -> str:
    if dtype.startswith("datetime64"):
        return "datetime"
    return _PANDAS_TO_MLFLOW.get(dtype, "string")


class MlflowSink:
    """Applies records of one session journal to the store."""

    def __init__(
        self, settings: Settings, state: DrainState, save_state: Callable[[], None]
    ) -> None:
        self.settings = settings
        self.state = state
        self._save = save_state
        self._client = store.client(settings)
        self._session_metrics: list[Any] = []
        #: record id -> status of the run the store already holds for it (from reconcile)
        self._in_store: dict[str, str] = {}
        self._experiments: dict[str, str] = {}
        self._file_digests: dict[tuple[str, str | None], str | None] = {}

    @property
    def _session(self) -> Record:
        return self.state.session

    # -- reconciliation ---------------------------------------------------------------
    def reconcile(self, records: list[Record]) -> None:
        """Ask the store which of ``records`` an interrupted drain already wrote."""
        self._reconcile_runs(records)
        session_start = next((r for r in records if r.get("type") == "session_start"), None)
        if session_start is not None and not self.state.session:
            self.state.session = session_start
        rec = self.state.session
        if not self.state.session_run_id and rec and not rec.get("session_run_id"):
            experiment_id = store.get_or_create_experiment(self.settings, rec["experiment"])
            found = self._search(
                experiment_id, f"tags.`mlops.session_id` = '{rec['session']}'", "session"
            )
            if found:
                self.state.experiment_id = experiment_id
                self.state.session_run_id = found[0].info.run_id
                self._save()
        cells = [
            r for r in records if r.get("type") == "cell" and r["id"] not in self.state.pending
        ]
        if not cells or not self.state.experiment_id:
            return
        since = min(int(r.get("start", 0)) for r in cells)
        sessions = {str(r["session"]) for r in cells}
        for session_id in sessions:
            query = f"tags.`mlops.session_id` = '{session_id}' and attributes.start_time >= {since}"
            for run in self._search(self.state.experiment_id, query, "cell"):
                record_id = run.data.tags.get("mlops.record_id")
                if not record_id:
                    continue
                if run.info.status == "RUNNING":
                    self.state.pending[record_id] = run.info.run_id
                else:
                    self._in_store[record_id] = run.info.status

    def _reconcile_runs(self, records: list[Record]) -> None:
        runs = [r for r in records if r.get("type") == "run" and r["id"] not in self.state.runs]
        for journal, experiment in sorted({(str(r["journal"]), r["experiment"]) for r in runs}):
            query = f"tags.`mlops.journal_id` = '{journal}'"
            for run in self._search(self._experiment(experiment), query):
                record_id = run.data.tags.get("mlops.record_id")
                if not record_id:
                    continue
                self.state.runs[record_id] = run.info.run_id
                if run.info.status == "RUNNING":
                    self.state.pending[record_id] = run.info.run_id
                else:
                    self._in_store[record_id] = run.info.status

    def _experiment(self, name: str) -> str:
        if name not in self._experiments:
            self._experiments[name] = store.get_or_create_experiment(self.settings, name)
        return self._experiments[name]

    def _search(self, experiment_id: str, query: str, kind: str | None = None) -> list[Any]:
        out: list[Any] = []
        token = None
        if kind is not None:
            query += f" and tags.`mlops.kind` = '{kind}'"
        while True:
            page = self._client.search_runs(
                [experiment_id],
                filter_string=query,
                max_results=1000,
                page_token=token,
            )
            out.extend(page)
            token = page.token
            if not token:
                return out

    # -- dispatch ---------------------------------------------------------------
    def apply(self, record: Record) -> None:
        kind = record.get("type")
        if kind == "session_start":
            self._session_start(record)
        elif kind == "cell":
            self._cell(record)
        elif kind == "session_move":
            self._session_move(record)
        elif kind == "session_tags":
            self._session_tags(record)
        elif kind == "session_end":
            self._session_end(record, record.get("status", "FINISHED"))
        elif kind == "run":
            self._run(record)
        self.state.last_time = max(self.state.last_time, int(record.get("time", 0) or 0))

    # -- session ------------------------------------------------------------------
    def _session_start(self, rec: Record) -> None:
        self.state.session = rec
        if self.state.session_run_id:
            return
        external = rec.get("session_run_id")
        if external:
            run = self._client.get_run(external)
            self.state.experiment_id = run.info.experiment_id
            self.state.session_run_id = external
            self.state.session_run_external = True
            self._save()
            return
        self.state.experiment_id = store.get_or_create_experiment(self.settings, rec["experiment"])
        notebook = rec.get("notebook")
        tags = {
            "mlops.kind": "session",
            "mlops.session_id": rec["session"],
            "mlflow.source.type": "NOTEBOOK",
            "mlflow.source.name": self.settings.relative(notebook)
            if notebook
            else rec["experiment"],
            **environment_tags(self.settings, notebook),
            **{k: str(v) for k, v in (rec.get("tags") or {}).items()},
        }
        if rec.get("parent_run_id"):
            tags["mlflow.parentRunId"] = rec["parent_run_id"]
        run = self._client.create_run(
            self.state.experiment_id,
            start_time=rec["time"],
            tags=tags,
            run_name=rec.get("run_name") or "session",
        )
        self.state.session_run_id = run.info.run_id
        self._save()

    def _session_move(self, rec: Record) -> None:
        """The notebook moved: its experiment follows (when the server has not renamed it
        already), and later cells are tagged with the new path."""
        from .moves import rename_experiment

        self.state.session = {
            **self.state.session,
            "experiment": rec["experiment"],
            "notebook": rec.get("notebook"),
        }
        if self.state.experiment_id and not self.state.session_run_external:
            rename_experiment(self._client, self.state.experiment_id, rec["experiment"])
        if self.state.session_run_id:
            self._client.set_tag(self.state.session_run_id, "mlflow.source.name", rec["experiment"])
        self._save()

    def _require_session(self) -> str:
        if not self.state.session_run_id:
            raise RuntimeError("journal has records before its session_start")
        return self.state.session_run_id

    def _session_tags(self, rec: Record) -> None:
        from mlflow.entities import RunTag

        tags = [RunTag(k, _truncate(str(v), _MAX_TAG)) for k, v in rec["tags"].items()]
        self._client.log_batch(self._require_session(), tags=tags)

    def _session_end(self, rec: Record, status: str) -> None:
        run_id = self._require_session()
        if not self.state.session_run_external:
            # a step run belongs to the pipeline runner, which logs the executed notebook
            notebook = self._session.get("notebook")
            if notebook and Path(notebook).is_file():
                self._log_masked_notebook(run_id, Path(notebook))
            self._client.set_terminated(run_id, status, end_time=rec.get("time"))
        self.state.session_ended = True
        self._save()

    def close_killed(self) -> None:
        """Close a session whose kernel died before it could say goodbye."""
        if self.state.session_run_id and not self.state.session_ended:
            self._session_end({"time": self.state.last_time or None}, "KILLED")

    # -- cells ----------------------------------------------------------------------
    def _cell_tags(self, rec: Record) -> dict[str, str]:
        source: str = rec.get("source", "")
        preview, label = describe(source)
        tags = {
            "mlops.kind": "cell",
            "mlflow.parentRunId": self._require_session(),
            "mlops.session_id": rec["session"],
            "mlops.record_id": rec["id"],
            "mlops.execution_count": str(rec.get("execution_count")),
            "mlops.source_hash": rec.get("source_hash", ""),
            "mlops.source_preview": _truncate(preview, _PREVIEW),
            "mlflow.source.type": "NOTEBOOK",
        }
        if self._session.get("notebook"):
            tags["mlflow.source.name"] = self.settings.relative(self._session["notebook"])
        if rec.get("cell_id"):
            tags["mlops.cell_id"] = str(rec["cell_id"])
        if len(source) <= self.settings.tracking.source_tag_limit:
            tags["mlops.source"] = source
        else:
            tags["mlops.source_artifact"] = "cell_source.py"
        error = rec.get("error")
        if error:
            tags["mlops.error_type"] = _truncate(str(error.get("type", "")), 250)
            tags["mlops.error_message"] = _truncate(str(error.get("message", "")), 1000)
            for key in ("line", "code", "where", "traceback"):
                if error.get(key) not in (None, ""):
                    tags[f"mlops.error_{key}"] = _truncate(str(error[key]), 4000)
        if label:
            tags["mlops.label"] = label
        if rec.get("files"):
            tags["mlops.files"] = _truncate(json.dumps(self._files(rec["files"])), _MAX_TAG)
        if rec.get("skipped"):
            tags["mlops.skipped"] = _truncate(json.dumps(rec["skipped"]), _MAX_TAG)
        for key, value in (rec.get("tags") or {}).items():
            tags[str(key)] = _truncate(str(value), _MAX_TAG)
        return tags

    def _cell(self, rec: Record) -> None:
        from mlflow.entities import Metric, Param

        client = self._client
        if rec["id"] in self._in_store:
            # written whole by an earlier drain that died before it saved its progress; the
            # session's history is logged again (MLflow ignores a metric it already holds)
            self._in_store.pop(rec["id"])
            self._session_metrics.extend(
                Metric(name, float(value), int(ts), int(step))
                for name, value, step, ts in rec.get("metrics") or []
            )
            return
        run_id = self.state.pending.get(rec["id"])
        if run_id is None:
            count = rec.get("execution_count")
            preview = _truncate(describe(rec.get("source", ""))[0], 40)
            run = client.create_run(
                self.state.experiment_id or "0",
                start_time=rec["start"],
                tags=self._cell_tags(rec),
                run_name=f"[{count}] {preview}" if count is not None else preview or "cell",
            )
            run_id = run.info.run_id
            self.state.pending[rec["id"]] = run_id

        params = [Param(k, str(v)) for k, v in (rec.get("params") or {}).items()]
        metrics = [
            Metric(name, float(value), int(ts), int(step))
            for name, value, step, ts in rec.get("metrics") or []
        ]
        session_metrics = list(metrics)
        metrics.append(Metric("mlops.duration_s", rec["duration_s"], rec["end"], 0))
        # one call for the usual cell; MLflow caps a batch at 100 params and 1000 entities
        first_params, more_params = params[:_MAX_PARAMS], params[_MAX_PARAMS:]
        room = _MAX_METRICS - len(first_params)
        client.log_batch(run_id, params=first_params, metrics=metrics[:room])
        for i in range(0, len(more_params), _MAX_PARAMS):
            client.log_batch(run_id, params=more_params[i : i + _MAX_PARAMS])
        for i in range(room, len(metrics), _MAX_METRICS):
            client.log_batch(run_id, metrics=metrics[i : i + _MAX_METRICS])
        inputs = [self._dataset_input(d) for d in rec.get("datasets") or ()]
        inputs += [self._file_input(f) for f in rec.get("files") or () if f["mode"] == "r"]
        if inputs:
            client.log_inputs(run_id, datasets=inputs)
        source = rec.get("source", "")
        if len(source) > self.settings.tracking.source_tag_limit:
            self._log_text(run_id, source, "cell_source.py")
        client.set_terminated(run_id, rec["status"], end_time=rec["end"])
        self.state.pending.pop(rec["id"], None)
        # the session run carries every metric as a history across cells, written per batch
        self._session_metrics.extend(session_metrics)

    # -- plain runs -------------------------------------------------------------------
    def _run(self, rec: Record) -> None:
        """A whole run from one record: tags, params, metrics, JSON artifacts, its end."""
        from mlflow.entities import Metric, Param

        record_id = rec["id"]
        if record_id in self._in_store:
            self._in_store.pop(record_id)  # written whole before an earlier drain died
            return
        if record_id in self.state.runs and record_id not in self.state.pending:
            return  # written whole earlier in a batch that is being replayed
        client = self._client
        run_id = self.state.pending.get(record_id)
        if run_id is None:
            tags = {
                **{k: _truncate(str(v), _MAX_TAG) for k, v in (rec.get("tags") or {}).items()},
                "mlops.record_id": record_id,
                "mlops.journal_id": str(rec["journal"]),
            }
            parent = rec.get("parent")
            if parent:
                parent_run = self.state.runs.get(parent)
                if parent_run is None:
                    raise RuntimeError(f"run record {record_id} comes before its parent {parent}")
                tags["mlflow.parentRunId"] = parent_run
            run = client.create_run(
                self._experiment(rec["experiment"]),
                start_time=rec["start"],
                tags=tags,
                run_name=rec.get("run_name"),
            )
            run_id = run.info.run_id
            self.state.pending[record_id] = run_id
            self.state.runs[record_id] = run_id
        params = [Param(k, str(v)) for k, v in (rec.get("params") or {}).items()]
        for i in range(0, len(params), _MAX_PARAMS):
            client.log_batch(run_id, params=params[i : i + _MAX_PARAMS])
        metrics = [
            Metric(k, float(v), rec["end"], 0) for k, v in (rec.get("metrics") or {}).items()
        ]
        for i in range(0, len(metrics), _MAX_METRICS):
            client.log_batch(run_id, metrics=metrics[i : i + _MAX_METRICS])
        for name, value in (rec.get("dicts") or {}).items():
            client.log_dict(run_id, value, name)
        client.set_terminated(run_id, rec["status"], end_time=rec["end"])
        self.state.pending.pop(record_id, None)

    def forget_batch(self) -> None:
        """Drop what a failed batch gathered; its replay gathers it again."""
        self._session_metrics = []
        self._in_store.clear()

    def flush_session_metrics(self) -> None:
        """Write the session run's metric history gathered since the last call."""
        pending, self._session_metrics = self._session_metrics, []
        for i in range(0, len(pending), _MAX_METRICS):
            self._client.log_batch(self._require_session(), metrics=pending[i : i + _MAX_METRICS])

    def _log_masked_notebook(self, run_id: str, path: Path) -> None:
        """The notebook as an artifact, with the secrets in its sources and outputs masked."""
        try:
            nb = json.loads(path.read_text(encoding="utf-8"))
            cells = nb["cells"]
        except (OSError, ValueError, KeyError, TypeError):
            return  # not a notebook we can read: better none than one with secrets
        redactor = Redactor(self.settings.tracking)

        def mask(text: Any, fn: Callable[[str], str]) -> Any:
            if isinstance(text, list):
                return fn("".join(map(str, text))).splitlines(keepends=True)
            return fn(text) if isinstance(text, str) else text

        for cell in cells:
            if not isinstance(cell, dict):
                continue
            masker = redactor.mask_source if cell.get("cell_type") == "code" else redactor.mask_text
            cell["source"] = mask(cell.get("source", ""), masker)
            for out in cell.get("outputs") or []:
                if not isinstance(out, dict):
                    continue
                if "text" in out:
                    out["text"] = mask(out["text"], redactor.mask_text)
                for key in ("evalue",):
                    if key in out:
                        out[key] = mask(out[key], redactor.mask_text)
                if isinstance(out.get("traceback"), list):
                    out["traceback"] = [mask(t, redactor.mask_text) for t in out["traceback"]]
                data = out.get("data")
                if isinstance(data, dict):
                    for mime in list(data):
                        if mime.startswith("text/") or mime.endswith("json"):
                            data[mime] = mask(data[mime], redactor.mask_text)
        self._log_text(run_id, json.dumps(nb, indent=1, ensure_ascii=False), path.name)

    def _log_text(self, run_id: str, text: str, name: str) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / name
            path.write_text(text, encoding="utf-8")
            self._client.log_artifact(run_id, str(path))

    def _file_digest(self, entry: dict[str, Any]) -> str | None:
        """A file's content digest, computed here, off the kernel; None for a file changed
        or gone since the cell ran (its content then is not what the cell saw)."""
        key = (entry["path"], entry.get("version"))
        if key not in self._file_digests:
            if len(self._file_digests) > 10_000:
                self._file_digests.clear()
            path = self.settings.project_dir / entry["path"]
            same = entry.get("version") and file_version(path) == entry["version"]
            self._file_digests[key] = content_digest(path) if same else None
        return self._file_digests[key]

    def _files(self, files: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for entry in files:
            digest = self._file_digest(entry)
            out.append({**entry, "digest": digest} if digest else dict(entry))
        return out

    def _file_input(self, entry: dict[str, Any]) -> Any:
        from mlflow.entities import Dataset, DatasetInput, InputTag

        digest = self._file_digest(entry)
        size = (entry.get("version") or "").split(":")[0]
        dataset = Dataset(
            name=entry["path"],
            # MLflow keeps 36 characters of a digest
            digest=(digest or entry.get("version") or "missing")[:36],
            source_type="local",
            source=json.dumps({"uri": entry["path"]}),
            profile=json.dumps({"bytes": int(size)}) if size.isdigit() else None,
        )
        return DatasetInput(dataset=dataset, tags=[InputTag("mlflow.data.context", "cell")])

    @staticmethod
    def _dataset_input(summary: dict[str, Any]) -> Any:
        from mlflow.entities import Dataset, DatasetInput, InputTag

        columns = summary.get("columns", {})
        schema = {
            "mlflow_colspec": [
                {"type": _mlflow_type(dtype), "name": name, "required": True}
                for name, dtype in columns.items()
            ]
        }
        profile = {"num_rows": summary["rows"], "num_elements": summary["rows"] * len(columns)}
        dataset = Dataset(
            name=summary["name"],
            digest=summary["digest"],
            source_type="code",
            source=json.dumps({"tags": {"mlops.variable": summary["name"]}}),
            schema=json.dumps(schema),
            profile=json.dumps(profile),
        )
        return DatasetInput(dataset=dataset, tags=[InputTag("mlflow.data.context", "cell")])
