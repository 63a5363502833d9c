"""A team's MLflow tracking server: a SQL database for runs and the registry, a directory (or
bucket) for artifacts that the server itself serves, so clients need only its URL.

Everyone then sets ``MLFLOW_TRACKING_URI=http://HOST:PORT`` and the same notebooks,
pipelines, registry, deployments and monitors work against it unchanged.

```yaml
team:                                   # mlops.yaml
  backend_store_uri: postgresql://mlflow@db.internal:5432/mlflow
  artifacts_destination: /srv/mlflow-artifacts
  port: 5000
```

The database URI (and the artifacts destination) reach ``mlflow server`` through its
environment, never its command line: ``ps`` shows every user a process's arguments, while
its environment is readable only by its owner.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from .._process import stop_process
from ..config import Settings, load_settings
from ..exceptions import ConfigError, StoreError

#: SQL databases MLflow's tracking server keeps runs and the registry in
BACKENDS = ("postgresql", "mysql", "sqlite")
_TEAM_KEYS = {"backend_store_uri", "artifacts_destination", "host", "port", "workers"}
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
CONNECT_TIMEOUT_S = 5
#: seconds the server gets to finish its requests after SIGTERM before it is killed
STOP_GRACE_S = 30.0
MASK = "***"
#: seconds an idle client connection stays open. uvicorn's own 5 s closed a pipeline's
#: pooled connection while the next step's request was already on its way, and MLflow's
#: client does not resend a run's creation (it may not be idempotent): the step failed on
#: "Connection reset by peer". Idle gaps near two minutes are rarer than near five seconds.
KEEP_ALIVE_S = 120


@dataclass
class TeamServer:
    """How the team's tracking server is started, and where clients find it."""

    backend_store_uri: str
    artifacts_destination: str
    host: str = "127.0.0.1"
    port: int = 5000
    workers: int = 2
    warnings: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}"

    def command(self) -> list[str]:
        """The ``mlflow server`` command line, with this interpreter's MLflow.

        It holds no secret: the backend URI and artifacts destination are in
        :meth:`environment`.
        """
        cmd = [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--serve-artifacts",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
            "--uvicorn-opts",
            f"--timeout-keep-alive {KEEP_ALIVE_S}",
        ]
        if self.host not in LOCAL_HOSTS:
            # MLflow refuses Host headers other than localhost unless told which to accept
            cmd += ["--allowed-hosts", "*"]
        return cmd

    def environment(self) -> dict[str, str]:
        """The options ``mlflow server`` reads from its environment instead of its arguments."""
        return {
            "MLFLOW_BACKEND_STORE_URI": self.backend_store_uri,
            "MLFLOW_ARTIFACTS_DESTINATION": self.artifacts_destination,
        }

    def mask(self, text: str) -> str:
        """``text`` (a log, an error) with the passwords of the server's URIs as ``***``."""
        for uri in (self.backend_store_uri, self.artifacts_destination):
            text = text.replace(uri, redact(uri))
            password = urlsplit(uri).password if "://" in uri else None
            for secret in {password, unquote(password)} if password else ():
                text = text.replace(f":{secret}@", f":{MASK}@")
                # a bare match of a very short password would garble the text, not hide much
                if len(secret) >= 4:
                    text = text.replace(secret, MASK)
        return text

    def summary(self) -> str:
        lines = [
            f"team tracking server at {self.url}",
            f"  runs and registry: {redact(self.backend_store_uri)}",
            f"  artifacts:         {redact(self.artifacts_destination)} (served by the server)",
            f"  clients:           export MLFLOW_TRACKING_URI={self.url}",
        ]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["backend_store_uri"] = redact(self.backend_store_uri)
        data["artifacts_destination"] = redact(self.artifacts_destination)
        data["url"] = self.url
        return data


def redact(uri: str) -> str:
    """``uri`` with its password as ``***``, for messages and logs.

    >>> redact("postgresql://team:s3cret@db:5432/mlflow")
    'postgresql://team:***@db:5432/mlflow'
    """
    if "://" not in uri:
        return uri
    parts = urlsplit(uri)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return uri
    # the host part is kept as written: urlsplit's hostname drops IPv6 brackets and case
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{hostport}"))


def backend_kind(uri: str) -> str:
    """``postgresql``, ``mysql`` or ``sqlite``; a ConfigError for anything else."""
    scheme = urlsplit(uri).scheme.split("+", 1)[0].lower()
    if scheme == "postgres":
        scheme = "postgresql"
    if scheme not in BACKENDS or "://" not in uri:
        raise ConfigError(
            f"backend store URI {redact(uri)!r} is not a database MLflow's tracking server can "
            "use: give postgresql://USER:PASSWORD@HOST:PORT/DB (or mysql://..., "
            "sqlite:///PATH)",
            field="--backend-store-uri",
        )
    return scheme


def with_driver(uri: str) -> str:
    """``uri`` naming the PostgreSQL driver that is installed.

    SQLAlchemy 2.1 reads a bare ``postgresql://`` as psycopg 3; the ``team`` extra installs
    psycopg2, so a bare URI would fail with "No module named 'psycopg'".
    """
    import importlib.util

    scheme, sep, rest = uri.partition("://")
    if scheme.lower() not in ("postgresql", "postgres"):
        return uri
    if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2"):
        return f"postgresql+psycopg2{sep}{rest}"
    return f"postgresql{sep}{rest}"


def check_database(uri: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Open and close one connection; a StoreError that says why when it fails."""
    kind = backend_kind(uri)
    try:
        import sqlalchemy
    except ImportError as err:  # comes with mlflow; a broken environment otherwise
        raise StoreError(f"SQLAlchemy is not importable: {err}") from None
    connect_args: dict[str, Any] = {}
    if kind in ("postgresql", "mysql"):
        connect_args["connect_timeout"] = int(timeout)
    if kind == "sqlite":
        path = uri.split(":///", 1)[-1]
        if path and not Path(path).parent.is_dir():
            raise StoreError(f"cannot create {path}: the directory {Path(path).parent} is missing")
    try:
        engine = sqlalchemy.create_engine(uri, connect_args=connect_args)
        with engine.connect():
            pass
        engine.dispose()
    except ModuleNotFoundError as err:
        extra = "team" if kind == "postgresql" else kind
        raise StoreError(
            f"no driver for {kind} ({err.name}): pip install 'jupyter-mlops[{extra}]'"
        ) from None
    except Exception as err:
        first = str(getattr(err, "orig", None) or err).strip().splitlines()
        reason = first[0] if first else type(err).__name__
        raise StoreError(f"cannot reach the database {redact(uri)}: {reason}") from None


def _team_section(settings: Settings) -> dict[str, Any]:
    section = settings.raw.get("team") or {}
    where = str(settings.project_dir / "mlops.yaml")
    if not isinstance(section, dict):
        raise ConfigError("expected a mapping", path=where, field="team")
    unknown = sorted(set(section) - _TEAM_KEYS)
    if unknown:
        raise ConfigError(
            f"unknown key {unknown[0]!r} (known: {', '.join(sorted(_TEAM_KEYS))})",
            path=where,
            field="team",
        )
    return section


def plan_server(
    backend_store_uri: str | None = None,
    artifacts_destination: str | None = None,
    *,
    host: str | None = None,
    port: int | None = None,
    workers: int | None = None,
    allow_remote: bool = False,
    settings: Settings | None = None,
    check: bool = True,
) -> TeamServer:
    """Validate the options (arguments first, then ``mlops.yaml``'s ``team:``) and the database.

    >>> plan_server("postgresql://mlflow:pw@127.0.0.1:5432/mlflow", "/srv/art")  # doctest: +SKIP
    """
    settings = settings or load_settings()
    section = _team_section(settings)
    uri = backend_store_uri or section.get("backend_store_uri")
    if not uri:
        raise ConfigError(
            "no backend store: pass --backend-store-uri postgresql://USER:PASSWORD@HOST:PORT/DB "
            "or set team.backend_store_uri in mlops.yaml"
        )
    backend_kind(str(uri))
    uri = with_driver(str(uri))
    destination = str(
        artifacts_destination
        or section.get("artifacts_destination")
        or settings.state_dir / "team-artifacts"
    )
    if "://" not in destination:
        destination = str(Path(destination).expanduser().resolve())
        Path(destination).mkdir(parents=True, exist_ok=True)
    server = TeamServer(
        backend_store_uri=str(uri),
        artifacts_destination=destination,
        host=str(host or section.get("host") or "127.0.0.1"),
        port=int(port or section.get("port") or 5000),
        workers=int(workers or section.get("workers") or 2),
    )
    if not 0 < server.port < 65536:
        raise ConfigError(f"port {server.port} is out of range", field="--port")
    if server.host not in LOCAL_HOSTS:
        if not allow_remote:
            raise ConfigError(
                f"binding to {server.host} exposes every run and model to that network; "
                "pass --allow-remote to do it on purpose",
                field="--host",
            )
        server.warnings.append(
            f"listening on {server.host}:{server.port}: MLflow's server has no authentication "
            "by default; anyone who reaches it can read and change runs and models. Put it "
            "behind an authenticating proxy or MLflow's basic-auth app."
        )
    if check:
        check_database(server.backend_store_uri)
    return server


def start_server(
    server: TeamServer, log: Path, *, ready_timeout: float = 300
) -> subprocess.Popen[bytes]:
    """Start the server process and return once ``/health`` answers.

    A server that exits is reported at once; one still starting gets ``ready_timeout``
    seconds, because creating a store's schema and forking workers on busy cores is slow.

    The server runs in a session of its own, so :func:`stop_server` stops its workers too.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        **server.environment(),
        "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    }
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            server.command(),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
    try:
        _wait_ready(server, proc, log, ready_timeout)
    except BaseException:
        stop_server(proc)
        raise
    return proc


def _wait_ready(
    server: TeamServer, proc: subprocess.Popen[bytes], log: Path, ready_timeout: float
) -> None:
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = server.mask(log.read_text(errors="replace")[-2000:])
            raise StoreError(f"the tracking server exited with {proc.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(f"{server.url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise StoreError(f"the tracking server did not answer on {server.url} in {ready_timeout:g} s")


def stop_server(proc: subprocess.Popen[bytes], *, grace: float = STOP_GRACE_S) -> int | None:
    """Stop the server and its workers: SIGTERM, ``grace`` seconds, then SIGKILL."""
    return stop_process(proc, grace=grace)
