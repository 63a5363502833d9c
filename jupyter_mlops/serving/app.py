"""The model server: an ASGI app (Starlette on uvicorn) over onnxruntime sessions.

Its deployment's ``deployment.json`` is the source of truth: the server re-reads it when
it changes, loads any new version before routing to it, then swaps the routing table in
one assignment, so a switch under load fails no request.
"""

from __future__ import annotations

import asyncio
import bisect
import hmac
import json
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from .capture_store import CaptureMetrics, CaptureWriter
from .config_file import read_config
from .model import RequestError, ServedVersion
from .protocols import mlflow_inputs, mlflow_response, v2_inputs, v2_metadata, v2_response

MAX_BODY_BYTES = 10 * 1024 * 1024
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
    for version, rel in config["versions"].items():
        versions[version] = loaded.get(version) or ServedVersion(version, base / rel)
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
        self.token = self.config.get("token")
        self.routing = build_routing(self.config, self.base, {})
        self._mtime = config_path.stat().st_mtime_ns
        capture_dir = self.config.get("capture_dir")
        self.capture = (
            CaptureWriter(Path(capture_dir), self.config.get("capture")) if capture_dir else None
        )
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
            except (OSError, ValueError, KeyError):
                continue  # a config being written: try again on the next tick

    # -- request plumbing ------------------------------------------------------------------
    async def body(self, request: Request) -> Any:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_body:
            raise RequestError(413, f"request body over the limit of {self.max_body} bytes")
        raw = await request.body()
        if len(raw) > self.max_body:
            raise RequestError(413, f"request body over the limit of {self.max_body} bytes")
        kind = request.headers.get("content-type", "application/json").split(";")[0].strip()
        if kind not in ("application/json", ""):
            raise RequestError(
                415, f"content type {kind!r} is not supported; send application/json"
            )
        try:
            return json.loads(raw)
        except ValueError as err:
            raise RequestError(400, f"the body is not valid JSON: {err}") from None

    def run(self, served: ServedVersion, arrays: dict[str, Any], protocol: str) -> Any:
        feeds = served.coerce(arrays)
        start = time.perf_counter()
        outputs = served.predict(feeds)
        took = time.perf_counter() - start
        self.requests.labels(served.version, protocol).inc()
        self.latency.labels(served.version).observe(took)
        if self.capture is not None:
            # the arrays themselves: the capture writer's thread converts and writes them
            self.capture.add(served.version, protocol, took, feeds, outputs)
        return outputs


def _error(err: RequestError) -> JSONResponse:
    return JSONResponse({"error_code": err.code, "message": err.message}, status_code=err.status)


def create_app(config_path: Path) -> Starlette:
    server = ModelServer(config_path)

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
                return _error(err)
            except Exception as err:  # a server fault, not the client's: say what it was
                server.errors.labels("500").inc()
                return JSONResponse(
                    {"error_code": "INTERNAL_ERROR", "message": f"{type(err).__name__}: {err}"},
                    status_code=500,
                )

        return wrapper

    async def ping(request: Request) -> Response:
        return PlainTextResponse("\n")

    async def invocations(request: Request) -> Response:
        body = await server.body(request)
        served = server.routing.pick()
        outputs = server.run(served, mlflow_inputs(body, served), "mlflow")
        return JSONResponse(mlflow_response(outputs), headers={"X-Model-Version": served.version})

    def _check_name(request: Request) -> None:
        name = request.path_params["name"]
        if name != server.name:
            raise RequestError(
                404, f"no model {name!r} here (this server serves {server.name!r})", "NOT_FOUND"
            )

    async def v2_infer(request: Request) -> Response:
        _check_name(request)
        body = await server.body(request)
        served = server.routing.pick()
        outputs = server.run(served, v2_inputs(body), "v2")
        return JSONResponse(
            v2_response(server.name, served.version, outputs),
            headers={"X-Model-Version": served.version},
        )

    async def v2_model(request: Request) -> Response:
        _check_name(request)
        routing = server.routing
        served = routing.versions[routing.order[0]]
        return JSONResponse(v2_metadata(server.name, routing.order, served))

    async def live(request: Request) -> Response:
        return JSONResponse({"live": True})

    async def ready(request: Request) -> Response:
        return JSONResponse({"ready": bool(server.routing.order)})

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(server.metrics), media_type="text/plain; version=0.0.4")

    async def status(request: Request) -> Response:
        routing = server.routing
        weights = dict(zip(routing.order, _weights(routing), strict=True))
        captured = server.capture.written if server.capture else 0
        return JSONResponse(
            {"generation": routing.generation, "weights": weights, "captured": captured}
        )

    routes = [
        Route("/ping", guarded(ping), methods=["GET"]),
        Route("/health", guarded(ping), methods=["GET"]),
        Route("/invocations", guarded(invocations), methods=["POST"]),
        Route("/v2/health/live", guarded(live), methods=["GET"]),
        Route("/v2/health/ready", guarded(ready), methods=["GET"]),
        Route("/v2/models/{name}", guarded(v2_model), methods=["GET"]),
        Route("/v2/models/{name}/infer", guarded(v2_infer), methods=["POST"]),
        Route("/metrics", guarded(metrics), methods=["GET"]),
        Route("/mlops/status", guarded(status), methods=["GET"]),
    ]

    async def lifespan(app: Starlette) -> Any:
        task = asyncio.create_task(server.watch())
        try:
            yield
        finally:
            task.cancel()
            if server.capture is not None:
                server.capture.close()

    async def http_error(request: Request, exc: Exception) -> Response:
        status = int(getattr(exc, "status_code", 500))
        detail = str(getattr(exc, "detail", "")) or "error"
        return JSONResponse({"error_code": "NOT_FOUND" if status == 404 else "BAD_REQUEST",
                             "message": f"{request.method} {request.url.path}: {detail}"},
                            status_code=status)  # fmt: skip

    from starlette.exceptions import HTTPException

    app = Starlette(
        routes=routes, lifespan=lifespan, exception_handlers={HTTPException: http_error}
    )
    app.state.server = server
    return app


def _weights(routing: Routing) -> list[float]:
    out, previous = [], 0.0
    for c in routing.cumulative:
        out.append(round((c - previous) / routing.cumulative[-1], 6))
        previous = c
    return out
