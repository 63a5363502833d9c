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
from urllib.parse import urlsplit, urlunsplit

from ..config import Settings, load_settings
from ..exceptions import ConfigError, StoreError

#: SQL databases MLflow's tracking server keeps runs and the registry in
BACKENDS = ("postgresql", "mysql", "sqlite")
_TEAM_KEYS = {"backend_store_uri", "artifacts_destination", "host", "port", "workers"}
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
CONNECT_TIMEOUT_S = 5


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
        """The ``mlflow server`` command line, with this interpreter's MLflow."""
        cmd = [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            self.backend_store_uri,
            "--artifacts-destination",
            self.artifacts_destination,
            "--serve-artifacts",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
        ]
        if self.host not in LOCAL_HOSTS:
            # MLflow refuses Host headers other than localhost unless told which to accept
            cmd += ["--allowed-hosts", "*"]
        return cmd

    def summary(self) -> str:
        lines = [
            f"team tracking server at {self.url}",
            f"  runs and registry: {redact(self.backend_store_uri)}",
            f"  artifacts:         {self.artifacts_destination} (served by the server)",
            f"  clients:           export MLFLOW_TRACKING_URI={self.url}",
        ]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["backend_store_uri"] = redact(self.backend_store_uri)
        data["url"] = self.url
        return data


def redact(uri: str) -> str:
    """``uri`` without its password, for messages and logs."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    netloc = f"{parts.username}:***@{parts.hostname}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


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
    server: TeamServer, log: Path, *, ready_timeout: float = 120
) -> subprocess.Popen[bytes]:
    """Start the server process and return once ``/health`` answers."""
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}
    with open(log, "ab") as out:
        proc = subprocess.Popen(server.command(), stdout=out, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise StoreError(f"the tracking server exited with {proc.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(f"{server.url}/health", timeout=2) as response:
                if response.status == 200:
                    return proc
        except OSError:
            time.sleep(0.5)
    proc.terminate()
    raise StoreError(f"the tracking server did not answer on {server.url} in {ready_timeout:g} s")
