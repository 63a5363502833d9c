"""The model server: an ASGI app (Starlette on uvicorn) over onnxruntime sessions.

Its deployment's ``deployment.json`` is the source of truth: the server re-reads it when
it changes, loads any new version before routing to it, then swaps the routing table in
one assignment, so a switch under load fails no request.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import hmac
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from .._version import __version__
from . import oip
from . import protocols as mlflow_protocol
from .capture_store import CaptureMetrics, CaptureWriter
from .config_file import read_config
from .jsonio import dumps
from .label_store import feedback_pairs, store_labels
from .limits import BODY_TIMEOUT_S, MAX_BODY_BYTES, read_body
from .model import RequestError, ServedVersion
from .request_ids import HEADER as REQUEST_ID
from .request_ids import request_id

_OPEN_PATHS = {"/ping", "/health", "/v2/health/live", "/v2/health/ready"}


@dataclass
class Routing:
    """Which versions answer, and how often: swapped as a whole, never edited in place."""

    generation: int
    versions: dict[str, ServedVersion]
    order: list[str]
    cumulative: list[float]

    def pick(self) -> ServedVersion:
        if len(self.order) == 1:
            return self.versions[self.order[0]]
        i = bisect.bisect_right(self.cumulative, random.random() * self.cumulative[-1])
        return self.versions[self.order[min(i, len(self.order) - 1)]]


def build_routing(config: dict[str, Any], base: Path, loaded: dict[str, ServedVersion]) -> Routing:
    versions = {}
    # declared at deploy time (models.<name>.context): captured, never fed to the model
    context = tuple(str(c) for c in config.get("context") or ())
    for version, rel in config["versions"].items():
        versions[version] = loaded.get(version) or ServedVersion(
            version, base / rel, context, str(config.get("model", ""))
        )
    weights = {v: float(w) for v, w in config["weights"].items() if float(w) > 0}
    order = sorted(weights)
    total = 0.0
    cumulative = []
    for v in order:
        total += weights[v]
        cumulative.append(total)
    return Routing(int(config.get("generation", 0)), versions, order, cumulative)


class ModelServer:
    """State of one server process."""

    def __init__(self, config_path: Path):
        self.config_path = config_path
        self.base = config_path.parent
        self.config = read_config(config_path)
        self.name = str(self.config["model"])
        self.max_body = int(self.config.get("max_body_bytes", MAX_BODY_BYTES))
        self.body_timeout = float(self.config.get("body_timeout_s", BODY_TIMEOUT_S))
        self.token = self.config.get("token")
        self.routing = build_routing(self.config, self.base, {})
        self._mtime = config_path.stat().st_mtime_ns
        capture_dir = self.config.get("capture_dir")
        # labels live beside the capture: .mlops/inference/<id>, also when capture is off
        self.deployment = str(self.config.get("id") or self.base.name)
        self.labels_dir = Path(
            capture_dir or self.base.parent.parent / "inference" / self.deployment
        )
        self.capture = (
            CaptureWriter(Path(capture_dir), self.config.get("capture")) if capture_dir else None
        )
        self.capturing = self._capturing(self.config)
        self.metrics = CollectorRegistry()
        self.requests = Counter(
            "mlops_requests_total", "Requests answered", ["version", "protocol"],
            registry=self.metrics,
        )  # fmt: skip
        self.errors = Counter(
            "mlops_request_errors_total", "Requests refused or failed", ["status"],
            registry=self.metrics,
        )  # fmt: skip
        self.latency = Histogram(
            "mlops_request_latency_seconds", "Model latency per request", ["version"],
            registry=self.metrics,
            buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5),
        )  # fmt: skip
        self._counted: dict[tuple[str, str], tuple[Any, Any]] = {}
        if self.capture is not None:
            # mlops_capture_dropped_total{reason} and mlops_capture_written_total, read at scrape
            self.metrics.register(CaptureMetrics(self.capture))

    # -- live configuration -------------------------------------------------------------------
    async def watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(0.1)
            try:
                mtime = self.config_path.stat().st_mtime_ns
                if mtime == self._mtime:
                    continue
                config = read_config(self.config_path)
                # load new sessions off the event loop, then swap in one assignment
                routing = await loop.run_in_executor(
                    None, build_routing, config, self.base, self.routing.versions
                )
                self.config, self.routing, self._mtime = config, routing, mtime
                self.capturing = self._capturing(config)
            except (OSError, ValueError, KeyError):
                continue  # a config being written: try again on the next tick

    def _capturing(self, config: dict[str, Any]) -> bool:
        """Capture on, and not paused live (``capture_paused`` of ``deployment.json``)."""
        return self.capture is not None and not config.get("capture_paused")

    # -- request plumbing ------------------------------------------------------------------
    async def body(self, request: Request) -> bytes:
        return await read_body(request, self.max_body, self.body_timeout)

    def run(
        self,
        served: ServedVersion,
        arrays: dict[str, Any],
        protocol: str,
        request_id: str,
        names: list[str] | None = None,
        context: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        feeds = served.coerce(arrays)
        start = time.perf_counter()
        outputs = served.predict(feeds, names)
        took = time.perf_counter() - start
        counted = self._counted.get((served.version, protocol))
        if counted is None:  # a labelled child is a locked lookup: made once per version
            counted = self._counted[served.version, protocol] = (
                self.requests.labels(served.version, protocol),
                self.latency.labels(served.version),
            )
        counted[0].inc()
        counted[1].observe(took)
        capture = self.capture
        if capture is not None:
            if self.capturing:
                # copied into the queued columns; the capture writer's thread writes them
                capture.add(
                    served.version, protocol, took, feeds, outputs, request_id, served.columns,
                    context,
                )  # fmt: skip
            else:
                capture.skip("paused")
        return outputs


def _is_v2(request: Request) -> bool:
    path: str = request.url.path
    return path == "/v2" or path.startswith("/v2/")


def _error(request: Request, err: RequestError) -> Response:
    """The protocol's error body: ``{"error"}`` under ``/v2``, MLflow's JSON elsewhere."""
    headers = {REQUEST_ID: err.request_id} if err.request_id else None
    if _is_v2(request):
        body = dumps({"error": err.message})
        return Response(body, err.status, headers, media_type="application/json")
    return JSONResponse(mlflow_protocol.error_body(err), err.status, headers)


def _mlflow_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mlflow")
    except PackageNotFoundError:
        return str(__version__)


def create_app(config_path: Path) -> Starlette:
    server = ModelServer(config_path)
    mlflow_version = _mlflow_version()

    def guarded(
        handler: Callable[[Request], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def wrapper(request: Request) -> Response:
            try:
                if server.token and request.url.path not in _OPEN_PATHS:
                    given = request.headers.get("authorization", "")
                    if not hmac.compare_digest(given, f"Bearer {server.token}"):
                        raise RequestError(401, "missing or wrong bearer token", "UNAUTHENTICATED")
                return await handler(request)
            except RequestError as err:
                server.errors.labels(str(err.status)).inc()
                return _error(request, err)
            except mlflow_protocol.PlainError as err:
                server.errors.labels(str(err.status)).inc()
                headers = {REQUEST_ID: err.request_id} if err.request_id else None
                return PlainTextResponse(err.text, err.status, headers)
            except Exception as err:  # a server fault, not the client's: say what it was
                server.errors.labels("500").inc()
                fault = RequestError(500, f"{type(err).__name__}: {err}", "INTERNAL_ERROR")
                return _error(request, fault)

        return wrapper

    async def ping(request: Request) -> Response:
        return Response("\n", media_type="application/json")

    async def mlflow_version_route(request: Request) -> Response:
        return Response(mlflow_version, media_type="application/json")

    async def invocations(request: Request) -> Response:
        rid = request_id(request.headers.get(REQUEST_ID))
        try:
            mime = mlflow_protocol.media_type(request.headers.get("content-type"))
            raw = await server.body(request)
            served = server.routing.pick()
            parsed = mlflow_protocol.parse(raw, mime, served)
            try:
                outputs = server.run(served, parsed.arrays, "mlflow", rid, None, parsed.context)
            except RequestError as err:
                if err.status != 400:
                    raise
                raise RequestError(
                    400, f"{mlflow_protocol.EVALUATION_FAILED} {err.message}"
                ) from None
            body = dumps(
                mlflow_protocol.response(
                    outputs, parsed.frame, served.class_labels, by_row=served.columns
                )
            )
        except (RequestError, mlflow_protocol.PlainError) as err:
            err.request_id = rid  # the client can quote it when it reports the failure
            raise
        headers = {"X-Model-Version": served.version, REQUEST_ID: rid}
        return Response(body, media_type="application/json", headers=headers)

    def _served(request: Request, pick: bool) -> ServedVersion:
        """The version a ``/v2/models/<name>[/versions/<v>]`` path names (checked)."""
        name = request.path_params["name"]
        if name != server.name:
            raise RequestError(
                404, f"no model {name!r} here (this server serves {server.name!r})", "NOT_FOUND"
            )
        routing = server.routing
        version = request.path_params.get("version")
        if version is None:
            return routing.pick() if pick else routing.versions[routing.order[0]]
        served = routing.versions.get(version)
        if served is None:
            raise RequestError(
                404, f"model {name!r} has no version {version!r} served here (served: "
                f"{sorted(routing.versions)})", "NOT_FOUND",
            )  # fmt: skip
        return served

    async def v2_infer(request: Request) -> Response:
        served = _served(request, pick=True)
        encoding = request.headers.get("content-encoding", "identity").strip().lower()
        if encoding != "identity":
            raise RequestError(415, f"Content-Encoding {encoding!r} is not supported; send "
                               "the body uncompressed")  # fmt: skip
        raw = await server.body(request)
        infer = oip.parse_infer(raw, request.headers.get(oip.HEADER_LENGTH), served, server.name)
        # the body's id is the protocol's own; X-Request-ID serves a client that sends none
        rid = infer.id or request_id(request.headers.get(REQUEST_ID))
        try:
            outputs = server.run(served, infer.inputs, "v2", rid, infer.outputs, infer.context)
        except RequestError as err:
            err.request_id = rid
            raise
        body, headers = oip.infer_response(server.name, served, infer, outputs)
        headers["X-Model-Version"] = served.version
        headers[REQUEST_ID] = rid
        return Response(body, headers=headers)

    async def v2_model(request: Request) -> Response:
        served = _served(request, pick=False)
        versions = [served.version] if "version" in request.path_params else server.routing.order
        return JSONResponse(oip.model_metadata(server.name, versions, served))

    async def v2_model_ready(request: Request) -> Response:
        served = _served(request, pick=False)
        return JSONResponse({"name": server.name, "version": served.version, "ready": True})

    async def v2_server(request: Request) -> Response:
        return JSONResponse(oip.server_metadata(__version__))

    async def live(request: Request) -> Response:
        return JSONResponse({"live": True})

    async def ready(request: Request) -> Response:
        up = bool(server.routing.order)
        return JSONResponse({"ready": up}, status_code=200 if up else 503)

    async def feedback(request: Request) -> Response:
        """Ground truth for earlier predictions, by request id: stored with the project."""
        pairs = feedback_pairs(await server.body(request))
        loop = asyncio.get_running_loop()
        # a locked append with fsync and a look at the capture's ids: off the event loop
        result = await loop.run_in_executor(
            None, store_labels, server.labels_dir, server.deployment, pairs
        )
        return JSONResponse(result.to_dict())

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(server.metrics), media_type="text/plain; version=0.0.4")

    async def status(request: Request) -> Response:
        routing = server.routing
        weights = dict(zip(routing.order, _weights(routing), strict=True))
        captured = server.capture.written if server.capture else 0
        return JSONResponse({
            "generation": routing.generation, "weights": weights, "captured": captured,
            "capturing": server.capturing,
        })  # fmt: skip

    model = "/v2/models/{name}"
    versioned = "/v2/models/{name}/versions/{version}"
    routes = [
        Route("/ping", guarded(ping), methods=["GET"]),
        Route("/health", guarded(ping), methods=["GET"]),
        Route("/version", guarded(mlflow_version_route), methods=["GET"]),
        Route("/invocations", guarded(invocations), methods=["POST"]),
        Route("/v2", guarded(v2_server), methods=["GET"]),
        Route("/v2/health/live", guarded(live), methods=["GET"]),
        Route("/v2/health/ready", guarded(ready), methods=["GET"]),
        Route(model, guarded(v2_model), methods=["GET"]),
        Route(versioned, guarded(v2_model), methods=["GET"]),
        Route(f"{model}/ready", guarded(v2_model_ready), methods=["GET"]),
        Route(f"{versioned}/ready", guarded(v2_model_ready), methods=["GET"]),
        Route(f"{model}/infer", guarded(v2_infer), methods=["POST"]),
        Route(f"{versioned}/infer", guarded(v2_infer), methods=["POST"]),
        Route("/feedback", guarded(feedback), methods=["POST"]),
        Route("/metrics", guarded(metrics), methods=["GET"]),
        Route("/mlops/status", guarded(status), methods=["GET"]),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(server.watch())
        try:
            yield
        finally:
            task.cancel()
            if server.capture is not None:
                server.capture.close()

    async def http_error(request: Request, exc: Exception) -> Response:
        """Unknown paths and methods: the protocol's error body, FastAPI's as MLflow sends."""
        status = int(getattr(exc, "status_code", 500))
        detail = str(getattr(exc, "detail", "")) or "error"
        if _is_v2(request):
            message = f"{request.method} {request.url.path}: {detail}"
            return JSONResponse({"error": message}, status_code=status)
        return JSONResponse({"detail": detail}, status_code=status)

    app = _ModelApp(
        routes=routes, lifespan=lifespan, exception_handlers={HTTPException: http_error}
    )
    app.invocations = guarded(invocations)
    app.state.server = server
    return app


class _ModelApp(Starlette):
    """Starlette, with ``POST /invocations`` answered before its middleware and router: a
    tenth of a one-row request's time. ``guarded`` already turns every exception into the
    protocol's answer, which is all the middleware would do with it."""

    invocations: Callable[[Request], Awaitable[Response]] | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if (
            self.invocations is not None
            and scope["type"] == "http"
            and scope["path"] == "/invocations"
            and scope["method"] == "POST"
        ):
            scope["app"] = self
            response = await self.invocations(Request(scope, receive, send))
            await response(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def _weights(routing: Routing) -> list[float]:
    out, previous = [], 0.0
    for c in routing.cumulative:
        out.append(round((c - previous) / routing.cumulative[-1], 6))
        previous = c
    return out
