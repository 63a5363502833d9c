"""The one base handler: authentication, settings, input parsing and error translation."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from jupyter_server.base.handlers import APIHandler
from tornado import web
from tornado.ioloop import IOLoop

from ..config import Settings, load_settings
from ..exceptions import MlopsError

T = TypeVar("T")

#: Key in the tornado application's settings holding the served root directory.
ROOT_KEY = "jupyter_mlops_root_dir"


class ApiError(web.HTTPError):
    """An error with the JSON body a client reads: ``{"error", "message", ...}``."""

    def __init__(self, status: int, kind: str, message: str, **extra: Any) -> None:
        # tornado %-formats log_message when it logs the error
        super().__init__(status, message.replace("%", "%%"))
        self.payload: dict[str, Any] = {"error": kind, "message": message, **extra}


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def _payload(err: MlopsError) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    failed = getattr(err, "failed", None)
    if failed:
        extra["failed"] = [g.to_dict() if hasattr(g, "to_dict") else g for g in failed]
    return extra


def to_json(value: Any) -> Any:
    """A service result (dataclass, list of them, dict) as plain JSON data."""
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, list):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    return value


def _no_constant(token: str) -> Any:
    # Python's parser accepts these; JSON does not, and no field of ours takes them
    raise ValueError(f"{token} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range for a number")
    return value


class MlopsHandler(APIHandler):
    """Every route's base. Subclasses decorate each verb with ``@web.authenticated``."""

    @property
    def root_dir(self) -> Path:
        return Path(self.settings[ROOT_KEY]).resolve()

    def project(self) -> Settings:
        """The project served: the root, or the nearest parent with an ``mlops.yaml``."""
        return load_settings(self.root_dir)

    def inside_root(self, settings: Settings, path: str) -> Path:
        """``path`` (relative to the served root) resolved; refused when it leaves the root."""
        if not path.strip():
            raise bad_request("notebook: an empty path")
        served = dataclasses.replace(settings, project_dir=self.root_dir)
        try:
            return served.resolve_inside(path.lstrip("/"))
        except MlopsError as err:
            raise ApiError(400, "BadRequest", f"notebook={path}: outside the served root") from err

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a service function on a worker thread; its ``MlopsError`` becomes a 4xx/5xx."""
        try:
            return await IOLoop.current().run_in_executor(None, partial(fn, *args, **kwargs))
        except MlopsError as err:
            raise ApiError(err.status, type(err).__name__, str(err), **_payload(err)) from err

    # -- input ------------------------------------------------------------------------------
    def int_arg(self, name: str, default: int, low: int = 1, high: int = 1000) -> int:
        raw = self.get_query_argument(name, None)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise bad_request(f"{name} must be an integer, got {raw!r}") from None
        if not low <= value <= high:
            raise bad_request(f"{name} must be between {low} and {high}, got {value}")
        return value

    def body(self) -> dict[str, Any]:
        raw = self.request.body or b"{}"
        try:
            data = json.loads(raw, parse_constant=_no_constant, parse_float=_finite_float)
        except RecursionError:
            raise bad_request("the request body is nested too deeply") from None
        except ValueError as err:  # UnicodeDecodeError is one
            raise bad_request(f"the request body is not valid JSON: {err}") from None
        if not isinstance(data, dict):
            raise bad_request("the request body must be a JSON object")
        return data

    @staticmethod
    def field(
        body: dict[str, Any], name: str, kind: type | tuple[type, ...], default: Any = ...
    ) -> Any:
        """``body[name]`` of type ``kind``; missing means ``default`` or a 400."""
        if name not in body or body[name] is None:
            if default is ...:
                raise bad_request(f"missing field {name!r}")
            return default
        value = body[name]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds:
            raise bad_request(f"field {name!r} has the wrong type (bool)")
        if not isinstance(value, kinds):
            names = " or ".join(k.__name__ for k in kinds)
            raise bad_request(f"field {name!r} must be {names}, got {type(value).__name__}")
        return value

    # -- output -----------------------------------------------------------------------------
    def reply(self, value: Any, status: int = 200) -> None:
        """``value`` as JSON. A GET answer carries an ETag of its body, so a poller that sends
        it back (``If-None-Match``) gets an empty 304 while nothing changed."""
        body = json.dumps(to_json(value))
        etag = f'"{hashlib.sha1(body.encode()).hexdigest()}"'
        if self.request.method == "GET" and status == 200 and self.not_modified(etag):
            return
        self.set_status(status)
        self.finish(body)

    def not_modified(self, etag: str) -> bool:
        """Answer 304 (and say so) when the client already holds ``etag``."""
        self.set_header("ETag", etag)
        seen = self.request.headers.get("If-None-Match", "")
        if etag in [t.strip().removeprefix("W/") for t in seen.split(",")]:
            self.set_status(304)
            self.finish()
            return True
        return False

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, ApiError):
            payload = exc.payload
        elif isinstance(exc, web.HTTPError) and status_code == 403 and not exc.log_message:
            payload = {
                "error": "Forbidden",
                "message": "not authenticated: send the server's token or log in to Jupyter",
            }
        elif isinstance(exc, web.HTTPError):
            payload = {
                "error": exc.reason or self._reason,
                "message": exc.log_message or exc.reason or self._reason,
            }
        elif exc is not None:
            # logged with its traceback by tornado before this runs
            payload = {"error": type(exc).__name__, "message": f"{type(exc).__name__}: {exc}"}
        else:
            payload = {"error": self._reason, "message": self._reason}
        self.finish(json.dumps(payload))
