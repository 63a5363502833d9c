"""The one place that builds the MLflow client.

For the embedded SQLite store it also makes the database safe for several writers at once
(two kernels, parallel pipeline steps): WAL journal mode, a relaxed fsync policy and a busy
timeout, and schema creation serialised by a file lock so two processes opening a new
database do not race on its tables.

The project's ``.mlops/`` holds run records, logs and artifacts of one user: it is made
private (directories 0700, the database and logs 0600) by whichever process opens it first.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import Settings
from .exceptions import StoreError

if TYPE_CHECKING:
    from mlflow import MlflowClient

_clients: dict[tuple[str, str], MlflowClient] = {}
_lock = threading.Lock()
_listener_installed = False


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI, or None for any other store."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri[len("sqlite:///") :])


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _install_sqlite_pragmas() -> None:
    """Every SQLite connection this process opens waits for locks and skips per-commit fsync.

    ``synchronous=NORMAL`` is safe in WAL mode (a power cut may lose the last commits, never
    corrupt the file) and is what makes a background writer keep up with many short cells.
    """
    global _listener_installed
    if _listener_installed:
        return
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        if isinstance(dbapi_connection, sqlite3.Connection):
            cur = dbapi_connection.cursor()
            cur.execute("PRAGMA busy_timeout = 30000")
            cur.execute("PRAGMA synchronous = NORMAL")
            cur.close()

    event.listen(Engine, "connect", on_connect)
    _listener_installed = True


PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
#: files of an SQLite database: SQLite gives ``-wal`` and ``-shm`` the main file's mode
_DB_SUFFIXES = ("", "-wal", "-shm", "-journal", ".init.lock")


def private_dir(path: Path) -> Path:
    """``path`` created if missing, readable by its owner only."""
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    _tighten(path, PRIVATE_DIR)
    return path


def _tighten(path: Path, mode: int) -> None:
    """Give an existing ``path`` ``mode``; leave what is missing or not ours to change."""
    with contextlib.suppress(OSError):
        if path.stat().st_mode & 0o777 != mode:
            path.chmod(mode)


def secure_state_dir(settings: Settings) -> None:
    """Make what exists of ``.mlops/`` private: folders 0700, logs and the database 0600.

    Cheap (a few ``stat`` calls): run wherever a process may have created files there.
    """
    state = settings.state_dir
    if not state.is_dir():
        return
    for folder in (state, state / "journal", state / "logs", state / "artifacts"):
        _tighten(folder, PRIVATE_DIR)
    with contextlib.suppress(OSError):
        for log in (state / "logs").iterdir():
            if log.is_file():
                _tighten(log, PRIVATE_FILE)
    db = sqlite_path(settings.tracking_uri)
    if db is not None:
        for suffix in _DB_SUFFIXES:
            _tighten(db.with_name(db.name + suffix), PRIVATE_FILE)


def _create_private(path: Path) -> None:
    """Create ``path`` 0600 unless it exists, whatever the process's umask."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))


def _prepare_sqlite(db: Path, artifact_root: Path) -> None:
    """Create the schema once, under a lock, with our artifact root for experiment 0."""
    db.parent.mkdir(parents=True, exist_ok=True)
    lock = db.with_name(db.name + ".init.lock")
    _create_private(lock)
    with _file_lock(lock):
        if db.exists() and db.stat().st_size > 0:
            conn = sqlite3.connect(db, timeout=30)
            try:
                has_schema = conn.execute(
                    "SELECT 1 FROM sqlite_master WHERE type='table' AND name='experiments'"
                ).fetchone()
            finally:
                conn.close()
            if has_schema:
                return
        _create_schema(db, artifact_root)


def _create_schema(db: Path, artifact_root: Path) -> None:
    """MLflow's schema, built in a scratch file and moved into place in one rename.

    Creating the tables and running MLflow's migrations takes seconds; a process killed
    meanwhile would leave a store no later process can open. Called under the init lock,
    so any scratch file already there is a killed process's leftover.
    """
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    for leftover in db.parent.glob(db.name + ".new*"):
        leftover.unlink(missing_ok=True)
    scratch = db.with_name(db.name + ".new")
    # SQLite creates -wal and -shm with the database file's mode: create it 0600 first
    _create_private(scratch)
    template = _schema_template()
    made = None
    if template is not None:
        try:
            shutil.copyfile(template, scratch)
            # tables at MLflow's head revision: it only adds experiment 0 with our root
            made = SqlAlchemyStore(f"sqlite:///{scratch.as_posix()}", artifact_root.as_uri())  # type: ignore[no-untyped-call]
        except Exception:
            made = None  # an unusable template: build the schema the long way, and anew
            template.unlink(missing_ok=True)
            for leftover in db.parent.glob(db.name + ".new*"):
                leftover.unlink(missing_ok=True)
            _create_private(scratch)
    if made is None:
        made = SqlAlchemyStore(f"sqlite:///{scratch.as_posix()}", artifact_root.as_uri())  # type: ignore[no-untyped-call]
    made.engine.dispose()
    conn = sqlite3.connect(scratch, timeout=30)
    try:
        # WAL is a property of the file: set once, every later connection uses it
        conn.execute("PRAGMA journal_mode=WAL")
    finally:
        conn.close()
    os.replace(scratch, db)


def schema_template_path() -> Path:
    """Where this MLflow version's empty schema is kept, per user (XDG's cache)."""
    import mlflow

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "jupyter-mlops" / f"mlflow-{mlflow.__version__}-schema.db"


def _has_schema(db: Path) -> bool:
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return bool(conn.execute("SELECT version_num FROM alembic_version").fetchone())
        finally:
            conn.close()
    except sqlite3.Error:
        return False


def _schema_template() -> Path | None:
    """MLflow's tables at their head revision with no experiment in them, built once per
    MLflow version, so a new store is a file copy (0.05 s) instead of MLflow's migrations
    (2 s on an idle machine, far more on a busy one). None when it cannot be kept."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    path = schema_template_path()
    if path.is_file():
        if _has_schema(path):
            return path
        # not a schema (truncated, overwritten): MLflow would retry opening it for minutes
        path.unlink(missing_ok=True)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        for stale in path.parent.glob(f"{path.name}.*.tmp"):
            # a builder killed midway; one still building is younger than this
            if time.time() - stale.stat().st_mtime > 600:
                stale.unlink(missing_ok=True)
        scratch = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        _create_private(scratch)
        with tempfile.TemporaryDirectory() as artifacts:
            made = SqlAlchemyStore(  # type: ignore[no-untyped-call]
                f"sqlite:///{scratch.as_posix()}", Path(artifacts).as_uri()
            )
            made.engine.dispose()
        conn = sqlite3.connect(scratch, timeout=30)
        try:
            # the default experiment's root is the store's own: each store makes it anew
            conn.execute("DELETE FROM experiment_tags")
            conn.execute("DELETE FROM experiments")
            conn.commit()
        finally:
            conn.close()
        os.replace(scratch, path)  # a process killed before this leaves only a .tmp
        return path
    except Exception:
        with contextlib.suppress(OSError, UnboundLocalError):
            scratch.unlink(missing_ok=True)
        return None


def client(settings: Settings) -> MlflowClient:
    """The MLflow client for ``settings``' store, built once per process.

    >>> from jupyter_mlops.config import load_settings
    >>> client(load_settings()).search_experiments()  # doctest: +SKIP
    """
    key = (settings.tracking_uri, settings.registry_uri)
    with _lock:
        cached = _clients.get(key)
        if cached is not None:
            return cached
        try:
            from mlflow import MlflowClient

            db = sqlite_path(settings.tracking_uri)
            if db is not None:
                if db.parent == settings.state_dir:
                    private_dir(settings.state_dir)
                if settings.state_dir in settings.artifact_root.parents:
                    # MLflow makes each experiment's folder later, with the umask's mode
                    private_dir(settings.artifact_root)
                _install_sqlite_pragmas()
                _prepare_sqlite(db, settings.artifact_root)
            secure_state_dir(settings)
            built = MlflowClient(
                tracking_uri=settings.tracking_uri, registry_uri=settings.registry_uri
            )
        except ImportError as err:
            raise StoreError(f"MLflow is not importable: {err}") from err
        except Exception as err:
            raise StoreError(
                f"cannot open the tracking store {settings.tracking_uri}: {err}"
            ) from err
        _clients[key] = built
        return built


def forget_clients() -> None:
    """Drop cached clients (after the store moved or in tests)."""
    with _lock:
        _clients.clear()


def experiment_artifact_location(settings: Settings, name: str) -> str | None:
    """Where a new experiment keeps its artifacts.

    None for a remote store: a tracking server decides (``--default-artifact-root``).
    """
    if not settings.is_embedded:
        return None
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-")[:60] or "experiment"
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    return (settings.artifact_root / f"{slug}-{digest}").as_uri()


#: The tag MLflow's UI reads to pick an experiment's view; without it MLflow 3 may open
#: ours in its GenAI (traces) view instead of the runs table of model training.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"


def get_or_create_experiment(settings: Settings, name: str) -> str:
    """The id of experiment ``name``, created (race-safely) when missing.

    It is tagged as a model-training experiment for MLflow's UI (an existing one of ours
    without the tag gets it on first use).
    """
    from mlflow.exceptions import MlflowException

    mlf = client(settings)
    found = mlf.get_experiment_by_name(name)
    if found is not None:
        if found.lifecycle_stage == "deleted":
            mlf.restore_experiment(found.experiment_id)
        if EXPERIMENT_KIND_TAG not in (found.tags or {}):
            mlf.set_experiment_tag(found.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
        return str(found.experiment_id)
    try:
        return str(
            mlf.create_experiment(
                name,
                artifact_location=experiment_artifact_location(settings, name),
                tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND},
            )
        )
    except MlflowException:
        # another process created it between our lookup and our insert
        again = mlf.get_experiment_by_name(name)
        if again is None:
            raise
        return str(again.experiment_id)


#: MLflow 3.17's UI shows the view the browser last chose (GenAI at first) whatever an
#: experiment's kind tag says; one click on its "Model training" switch is remembered.
UI_HINT = 'then open it and choose "Model training" (top left) once'


def ui_command(settings: Settings) -> str:
    """The shell command that opens the MLflow UI on this project's store, and what to click."""
    if not settings.is_embedded:
        return f"open {settings.tracking_uri} in a browser; {UI_HINT}"
    rel = os.path.relpath(settings.project_dir)
    prefix = "" if rel == "." else f"cd {rel} && "
    return (
        f"{prefix}mlflow ui --backend-store-uri {settings.tracking_uri} "
        f"--default-artifact-root {settings.artifact_root.as_uri()} --host 127.0.0.1"
        f"  # {UI_HINT}"
    )


def use_fluent(settings: Settings) -> None:
    """Point MLflow's fluent API (``mlflow.start_run``, ``log_model``) at the same store."""
    client(settings)  # the schema, WAL and pragmas first
    set_fluent_uris(settings.tracking_uri, settings.registry_uri)


def set_fluent_uris(tracking_uri: str, registry_uri: str) -> None:
    """Set MLflow's fluent URIs without changing ``os.environ``.

    MLflow also exports them to the environment; left there, a later ``load_settings()`` for
    another project in this process (or a child process) would read this one's store.
    """
    import mlflow

    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    try:
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_registry_uri(registry_uri)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
