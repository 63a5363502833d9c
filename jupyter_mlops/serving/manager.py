"""Deployments: start, list, re-weight, switch and stop model server processes.

State lives in ``.mlops/deployments/<id>/``: ``deployment.json`` (what the server serves,
re-read live), ``state.json`` (pid, url, spec), ``server.log`` and the downloaded versions.
Captured requests go to ``.mlops/inference/<id>/``. Both hold a bearer token or users'
requests, so their directories are 0700 and their files 0600.

A version already in the project's embedded store is resolved and linked without importing
MLflow (see ``local_registry``); a tracking server goes through MLflow.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .._process import stop_process
from ..config import Settings, load_settings, model_settings, serving_settings
from ..exceptions import MlopsError, NotFoundError
from .config_file import open_private, private_dir, read_config, write_config, write_private
from .follow import download_version

READY_TIMEOUT = 60.0
#: the server is up about 1 s after launch: look often, a late look is pure wait
READY_POLL = 0.01
#: seconds a stopped server gets to finish its requests and flush its capture after SIGTERM
STOP_GRACE_S = 10.0
_SPEC = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]*)(?:@(?P<alias>[A-Za-z_][\w-]*)|/(?P<version>\d+))?$"
)
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


class DeploymentError(MlopsError):
    """A deployment cannot be started or changed."""


@dataclass
class Deployment:
    """A running (or stopped) model server."""

    id: str
    model: str
    spec: str
    url: str
    host: str
    port: int
    pid: int
    versions: list[str]
    weights: dict[str, float]
    follow: str | None = None
    status: str = "running"
    created: float = field(default_factory=time.time)
    token: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("token", None)
        return data


def _root(settings: Settings) -> Path:
    return settings.state_dir / "deployments"


def _dir(settings: Settings, deployment_id: str) -> Path:
    if not _ID.match(deployment_id):
        raise NotFoundError(f"no deployment {deployment_id!r}")
    return _root(settings) / deployment_id


def parse_spec(spec: str) -> tuple[str, str | None, str | None]:
    """``name@alias``, ``name/3`` or ``name`` (= ``name@champion``)."""
    found = _SPEC.match(spec.strip())
    if not found:
        raise DeploymentError(f"model spec {spec!r}: write it as name@alias or name/version")
    alias = found.group("alias")
    version = found.group("version")
    if alias is None and version is None:
        alias = "champion"
    return found.group("name"), alias, version


def resolve_version(settings: Settings, spec: str) -> tuple[str, str, str | None]:
    """(model name, version, alias or None) of a spec, from the registry."""
    from .. import store
    from ..registry.service import alias_holder, require_model, require_version

    name, alias, version = parse_spec(spec)
    client = store.client(settings)
    require_model(client, name)
    if version is not None:
        return name, str(require_version(client, name, version).version), None
    assert alias is not None
    holder = alias_holder(client, name, alias)
    if holder is None:
        raise NotFoundError(f"model {name!r} has no alias {alias!r}")
    return name, str(holder.version), alias


def _resolve_fast(settings: Settings, spec: str) -> tuple[str, str, str | None]:
    """``resolve_version``, from the embedded store without MLflow when it can."""
    from .local_registry import local_onnx

    name, alias, version = parse_spec(spec)
    local = local_onnx(settings, name, alias, version)
    if local is not None:
        return name, local[0], alias if version is None else None
    return resolve_version(settings, spec)


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours is not alive
        with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def _get(url: str, token: str | None = None, timeout: float = 2.0) -> Any:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        body = response.read()
    return json.loads(body) if body.strip().startswith((b"{", b"[")) else body.decode()


def _load_state(directory: Path) -> Deployment:
    path = directory / "state.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    with contextlib.suppress(OSError):  # made readable by all by an earlier release
        if path.stat().st_mode & 0o077:
            for name in ("state.json", "deployment.json"):
                os.chmod(directory / name, 0o600)
            os.chmod(directory, 0o700)
    return Deployment(**data)


def _save_state(directory: Path, deployment: Deployment) -> None:
    write_private(directory / "state.json", json.dumps(asdict(deployment), indent=1).encode())


def _fetch(settings: Settings, directory: Path, name: str, version: str) -> str:
    from .local_registry import link_tree, local_onnx

    private_dir(directory / "versions")
    local = local_onnx(settings, name, None, version)
    if local is not None:
        _, root, onnx_file = local
        dest = directory / "versions" / version
        link_tree(root, dest)
        return str((dest / onnx_file.relative_to(root)).relative_to(directory))
    path = download_version(
        settings.tracking_uri,
        settings.registry_uri,
        name,
        version,
        directory / "versions" / version,
    )
    return str(path.relative_to(directory))


def _log_tail(directory: Path) -> str:
    try:
        return (directory / "server.log").read_text(encoding="utf-8")[-2000:]
    except OSError:
        return ""


def deploy(
    spec: str,
    *,
    canary: str | None = None,
    canary_weight: float = 0.1,
    port: int | None = None,
    host: str = "127.0.0.1",
    follow: bool = False,
    name: str | None = None,
    capture: bool | None = None,
    follow_interval: float = 5.0,
    settings: Settings | None = None,
) -> Deployment:
    """Serve ``spec`` (``digits@champion``) as a REST endpoint; returns once it is ready.

    ``canary`` (another spec) takes ``canary_weight`` of the traffic. ``follow=True`` keeps a
    ``name@alias`` deployment on whatever version the alias points to. A host other than
    127.0.0.1 gets a bearer token (in the returned ``Deployment``). ``capture`` (default:
    ``serving.capture.enabled`` of ``mlops.yaml``, on) keeps the requests it answers.

    >>> d = jupyter_mlops.deploy("digits@champion")  # doctest: +SKIP
    >>> d.url  # doctest: +SKIP
    'http://127.0.0.1:40123'
    """
    settings = settings or load_settings()
    capture_config = serving_settings(settings).capture
    model, version, alias = _resolve_fast(settings, spec)
    weights = {version: 1.0}
    if canary:
        if not 0 < canary_weight < 1:
            raise DeploymentError(f"canary weight must be between 0 and 1, got {canary_weight}")
        canary_model, canary_version, _ = _resolve_fast(settings, canary)
        if canary_model != model:
            raise DeploymentError(f"a canary must be a version of {model!r}, not {canary_model!r}")
        if canary_version != version:
            weights = {version: round(1 - canary_weight, 6), canary_version: canary_weight}
    if follow and alias is None:
        raise DeploymentError("follow=True needs a name@alias spec")
    if port is None:
        port = _free_port(host)
    elif not _port_free(host, port):
        raise DeploymentError(f"port {port} on {host} is busy; pick another or leave port unset")
    deployment_id = name or f"{model}-{secrets.token_hex(3)}"
    directory = _dir(settings, deployment_id)
    if (directory / "state.json").exists() and _alive(_load_state(directory).pid):
        raise DeploymentError(f"deployment {deployment_id!r} is already running")
    private_dir(_root(settings))
    private_dir(directory)
    versions = {v: _fetch(settings, directory, model, v) for v in weights}
    if capture is None:
        capture = capture_config.enabled
    token = None if host in ("127.0.0.1", "localhost", "::1") else secrets.token_urlsafe(24)
    config: dict[str, Any] = {
        "id": deployment_id,
        "model": model,
        "generation": 1,
        "versions": versions,
        "weights": weights,
        "token": token,
        "capture_dir": str(settings.state_dir / "inference" / deployment_id) if capture else None,
        "capture": capture_config.to_dict(),
        "context": list(model_settings(settings, model).context),
        "follow": (
            {
                "alias": alias,
                "tracking_uri": settings.tracking_uri,
                "registry_uri": settings.registry_uri,
            }
            if follow
            else None
        ),
    }
    write_config(directory / "deployment.json", config)
    with open_private(directory / "server.log") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyter_mlops.serving", "--config",
             str(directory / "deployment.json"), "--host", host, "--port", str(port),
             "--follow-interval", str(follow_interval)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=settings.project_dir, start_new_session=True,
        )  # fmt: skip
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    deployment = Deployment(
        id=deployment_id, model=model, spec=spec, url=url, host=host, port=port, pid=proc.pid,
        versions=sorted(weights), weights=weights, follow=alias if follow else None, token=token,
    )  # fmt: skip
    _save_state(directory, deployment)
    deadline = time.monotonic() + READY_TIMEOUT
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                deployment.status = "dead"
                _save_state(directory, deployment)
                raise DeploymentError(
                    f"the model server exited with code {proc.returncode}:\n{_log_tail(directory)}"
                )
            try:
                _get(f"{url}/ping", timeout=1.0)
                return deployment
            except (OSError, urllib.error.URLError):
                time.sleep(READY_POLL)
    except BaseException:
        # interrupted (or failed) while it starts: no server is left running unknown
        stop_process(proc, grace=STOP_GRACE_S)
        raise
    undeploy(deployment_id, settings=settings)
    raise DeploymentError(
        f"the model server was not ready in {READY_TIMEOUT:g} s:\n{_log_tail(directory)}"
    )


def _live(directory: Path) -> Deployment:
    deployment = _load_state(directory)
    if deployment.status == "stopped":
        return deployment
    if not _alive(deployment.pid):
        deployment.status = "dead"
        return deployment
    try:
        status = _get(f"{deployment.url}/mlops/status", deployment.token)
        deployment.weights = status["weights"]
        deployment.versions = sorted(status["weights"])
        deployment.status = "running"
    except (OSError, urllib.error.URLError, ValueError, KeyError):
        deployment.status = "unresponsive"
    return deployment


def get_deployment(deployment_id: str, *, settings: Settings | None = None) -> Deployment:
    settings = settings or load_settings()
    directory = _dir(settings, deployment_id)
    if not (directory / "state.json").exists():
        known = [d.id for d in deployments(settings=settings)]
        raise NotFoundError(
            f"no deployment {deployment_id!r} (deployments: {', '.join(known) or 'none'})"
        )
    return _live(directory)


def deployments(*, settings: Settings | None = None) -> list[Deployment]:
    """Every deployment of the project with its live status."""
    settings = settings or load_settings()
    root = _root(settings)
    if not root.is_dir():
        return []
    return [_live(d) for d in sorted(root.iterdir()) if (d / "state.json").exists()]


def undeploy(deployment_id: str, *, settings: Settings | None = None) -> Deployment:
    """Stop the server; its captured requests stay for monitoring."""
    settings = settings or load_settings()
    deployment = get_deployment(deployment_id, settings=settings)
    # SIGTERM, then SIGKILL after a grace period, to the server's own session (it leads
    # one); a child of ours is reaped. Raises ProcessStopError if it outlives SIGKILL.
    stop_process(deployment.pid, grace=STOP_GRACE_S)
    deployment.status = "stopped"
    _save_state(_dir(settings, deployment_id), deployment)
    return deployment


def set_traffic(
    deployment_id: str, weights: dict[str, float], *, settings: Settings | None = None
) -> Deployment:
    """Re-weight traffic between versions live: ``{"3": 0.9, "4": 0.1}``.

    A version not loaded yet is fetched from the registry first; the call returns once the
    server routes by the new weights.
    """
    settings = settings or load_settings()
    deployment = _running(deployment_id, settings)
    clean: dict[str, float] = {}
    for version, weight in weights.items():
        try:
            value = float(weight)
        except (TypeError, ValueError):
            raise DeploymentError(
                f"weight of version {version}: {weight!r} is not a number"
            ) from None
        if value < 0:
            raise DeploymentError(f"weight of version {version} is negative ({value})")
        if value > 0:
            clean[str(version)] = value
    if not clean:
        raise DeploymentError("at least one version needs a weight above 0")
    total = sum(clean.values())
    clean = {v: round(w / total, 6) for v, w in clean.items()}
    directory = _dir(settings, deployment_id)
    config = read_config(directory / "deployment.json")
    from .. import store
    from ..registry.service import require_version

    for version in clean:
        if version not in config["versions"]:
            require_version(store.client(settings), deployment.model, version)
            config["versions"][version] = _fetch(settings, directory, deployment.model, version)
    config["weights"] = clean
    status = _reconfigure(directory, deployment, config, "the new weights")
    deployment.weights = status["weights"]
    deployment.versions = sorted(status["weights"])
    _save_state(directory, deployment)
    return deployment


def _running(deployment_id: str, settings: Settings) -> Deployment:
    """The deployment, refused unless its server is running: a change goes to a live server."""
    deployment = get_deployment(deployment_id, settings=settings)
    if deployment.status != "running":
        raise DeploymentError(f"deployment {deployment_id!r} is {deployment.status}")
    return deployment


def _reconfigure(
    directory: Path, deployment: Deployment, config: dict[str, Any], what: str
) -> dict[str, Any]:
    """Write a changed ``deployment.json`` as a new generation; the server's status once it
    runs by it."""
    config["generation"] = int(config.get("generation", 0)) + 1
    write_config(directory / "deployment.json", config)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status: dict[str, Any] = _get(f"{deployment.url}/mlops/status", deployment.token)
        if int(status["generation"]) >= config["generation"]:
            return status
        time.sleep(0.05)
    raise DeploymentError(f"the server did not take {what}:\n{_log_tail(directory)}")


def set_capture(deployment_id: str, on: bool, *, settings: Settings | None = None) -> bool:
    """Pause (``on=False``) or resume a running deployment's capture, live; True once the
    server captures. Requests answered while paused are counted as dropped ``paused``."""
    settings = settings or load_settings()
    deployment = _running(deployment_id, settings)
    directory = _dir(settings, deployment_id)
    config = read_config(directory / "deployment.json")
    if not config.get("capture_dir"):
        raise DeploymentError(
            f"deployment {deployment_id!r} was started without capture; deploy it again "
            "with capture on to capture its traffic"
        )
    config["capture_paused"] = not on
    status = _reconfigure(directory, deployment, config, "resumed capture" if on else "the pause")
    return bool(status["capturing"])


def switch(deployment_id: str, spec: str, *, settings: Settings | None = None) -> Deployment:
    """Blue/green: send all traffic to ``spec``'s version, loaded before the switch."""
    settings = settings or load_settings()
    deployment = get_deployment(deployment_id, settings=settings)
    model, version, _ = resolve_version(
        settings, spec if "@" in spec or "/" in spec else f"{deployment.model}/{spec}"
    )
    if model != deployment.model:
        raise DeploymentError(
            f"deployment {deployment_id!r} serves {deployment.model!r}, not {model!r}"
        )
    return set_traffic(deployment_id, {version: 1.0}, settings=settings)


def inference_log(
    deployment_id: str, since: float | str | None = None, *, settings: Settings | None = None
) -> Any:
    """Captured requests as a DataFrame, one row per instance (a batch of 8 is 8 rows).

    Columns: ``time``, ``version``, ``protocol``, ``latency_ms``, then ``f0..fn`` for the
    input features and ``out0..`` for the first output and ``request_id`` last (None for
    captures older than request ids). ``since`` is epoch seconds or an ISO time.
    ``attrs["dropped"]`` counts the requests capture did not keep, by reason (``sampled``,
    ``queue_full``, ``max_bytes``, ``max_age``, ``disk_full``, ``write_error``, ``paused``).

    >>> log = jupyter_mlops.inference_log("prod", since="2026-11-22T10:00")  # doctest: +SKIP
    >>> log.attrs["dropped"]["max_bytes"]  # doctest: +SKIP
    0
    """
    import datetime

    from .capture import capture_frame, has_capture

    settings = settings or load_settings()
    _dir(settings, deployment_id)
    directory = settings.state_dir / "inference" / deployment_id
    if not has_capture(directory):
        raise NotFoundError(f"deployment {deployment_id!r} has no captured traffic")
    if isinstance(since, str):
        since = datetime.datetime.fromisoformat(since).timestamp()
    return capture_frame(directory, since)


def format_capture(deployment_id: str, on: bool) -> str:
    """What ``set_capture`` left a deployment doing, as the doors print it."""
    return f"{deployment_id}: capture {'on' if on else 'paused'}"


def parse_canary(text: str) -> tuple[str, float]:
    """``digits@challenger:0.1`` -> (spec, weight)."""
    spec, sep, weight = text.rpartition(":")
    if not sep or not spec:
        raise DeploymentError(
            f"--canary {text!r}: write it as SPEC:WEIGHT, e.g. digits@challenger:0.1"
        )
    try:
        return spec, float(weight)
    except ValueError:
        raise DeploymentError(f"--canary {text!r}: weight {weight!r} is not a number") from None


def format_deployments(items: list[Deployment]) -> str:
    if not items:
        return "no deployments"
    from ..table import format_rows

    rows = [
        [
            d.id,
            d.model,
            d.status,
            d.url,
            ", ".join(f"v{v}={w:g}" for v, w in sorted(d.weights.items())),
            f"@{d.follow}" if d.follow else "",
            str(d.pid),
        ]
        for d in items
    ]
    return format_rows(("deployment", "model", "status", "url", "traffic", "follows", "pid"), rows)
