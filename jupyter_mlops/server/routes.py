"""The REST routes of ``docs/rest-api.md``: each parses its input and calls one service."""

from __future__ import annotations

import json
import re
from typing import Any

from jupyter_server.utils import url_path_join
from tornado import web

from .._version import __version__
from ..config import Settings
from .base import ROOT_KEY, ApiError, MlopsHandler, bad_request, to_json

_DEPLOYMENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


class StatusHandler(MlopsHandler):
    @web.authenticated
    def get(self) -> None:
        settings = self.project()
        self.reply(
            {
                "version": __version__,
                "project_dir": str(settings.project_dir),
                "root_dir": str(self.root_dir),
                "tracking_uri": settings.tracking_uri,
                "embedded": settings.is_embedded,
            }
        )


def _runs_page(
    settings: Settings, notebook: str, experiment: str, limit: int, token: str | None
) -> Any:
    from ..tracking.queries import notebook_runs

    return notebook_runs(settings, notebook, experiment, limit=limit, page_token=token)


class RunsHandler(MlopsHandler):
    @web.authenticated
    async def get(self) -> None:
        from ..tracking.queries import change_marker

        notebook = self.get_query_argument("notebook", None)
        if notebook is None:
            raise bad_request("missing query parameter 'notebook' (a path relative to the root)")
        limit = self.int_arg("limit", 50)
        token = self.get_query_argument("page_token", None) or None
        settings = self.project()
        experiment = settings.relative(self.inside_root(settings, notebook))
        marker = change_marker(settings, experiment, str(limit), token or "")
        if marker is not None and self.not_modified(f'"{marker}"'):
            return
        page = await self.call(_runs_page, settings, notebook, experiment, limit, token)
        if marker is None:
            self.reply(page)  # its ETag is then the body's
        else:
            # the marker's ETag, set above, stands for this page
            self.finish(json.dumps(to_json(page)))


class NotebookMoveHandler(MlopsHandler):
    @web.authenticated
    async def post(self) -> None:
        from ..tracking.moves import move_notebook

        body = self.body()
        settings = self.project()
        old = self.inside_root(settings, self.field(body, "from", str))
        new = self.inside_root(settings, self.field(body, "to", str))
        result = await self.call(
            move_notebook, settings, settings.relative(old), settings.relative(new)
        )
        # the kernel is told the absolute path: it runs in a folder, not at the root
        self.reply({**result.to_dict(), "notebook": str(new)})


class RunHandler(MlopsHandler):
    @web.authenticated
    async def get(self, run_id: str) -> None:
        from ..tracking.queries import run_detail

        self.reply(await self.call(run_detail, self.project(), run_id))


#: runs one comparison may hold
MAX_COMPARED = 20
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")


class CompareHandler(MlopsHandler):
    @web.authenticated
    async def get(self) -> None:
        from ..tracking.compare import compare_runs

        ids = list(dict.fromkeys(self.get_query_arguments("run")))
        if not 2 <= len(ids) <= MAX_COMPARED:
            raise bad_request(
                f"compare 2 to {MAX_COMPARED} runs, each as ?run=<run id>; got {len(ids)}"
            )
        for run_id in ids:
            if not _RUN_ID.match(run_id):
                raise bad_request(f"not a run id: {run_id[:40]!r} (32 hex digits)")
        self.reply(await self.call(compare_runs, self.project(), ids))


class PipelinesHandler(MlopsHandler):
    @web.authenticated
    async def get(self) -> None:
        from ..pipelines.history import pipeline_runs

        name = self.get_query_argument("name", None) or None
        limit = self.int_arg("limit", 20)
        runs = await self.call(pipeline_runs, self.project(), name=name, limit=limit)
        self.reply({"pipelines": runs})


class ModelsHandler(MlopsHandler):
    @web.authenticated
    async def get(self) -> None:
        from ..registry.service import models

        self.reply({"models": await self.call(models, settings=self.project())})


class PromoteHandler(MlopsHandler):
    @web.authenticated
    async def post(self, name: str) -> None:
        from ..registry.service import promote

        body = self.body()
        version = self.field(body, "version", (str, int))
        result = await self.call(
            promote,
            name,
            str(version),
            self.field(body, "alias", str, "champion"),
            self.field(body, "reason", str, ""),
            force=self.field(body, "force", bool, False),
            settings=self.project(),
        )
        self.reply(result)


class RollbackHandler(MlopsHandler):
    @web.authenticated
    async def post(self, name: str) -> None:
        from ..registry.service import rollback

        body = self.body()
        move = await self.call(
            rollback,
            name,
            self.field(body, "alias", str, "champion"),
            self.field(body, "reason", str, ""),
            settings=self.project(),
        )
        self.reply(move)


class DeploymentsHandler(MlopsHandler):
    @web.authenticated
    async def get(self) -> None:
        from ..serving.manager import deployments

        self.reply({"deployments": await self.call(deployments, settings=self.project())})

    @web.authenticated
    async def post(self) -> None:
        from ..serving.manager import deploy

        body = self.body()
        spec = self.field(body, "model", str)
        name = self.field(body, "name", str, None)
        if name is not None and not _DEPLOYMENT_NAME.match(name):
            raise bad_request(
                f"name {name!r}: letters, digits, '_' and '-', starting with a letter or digit"
            )
        weight = self.field(body, "canary_weight", (int, float), 0.1)
        deployment = await self.call(
            deploy,
            spec,
            canary=self.field(body, "canary", str, None),
            canary_weight=float(weight),
            follow=self.field(body, "follow", bool, False),
            name=name,
            settings=self.project(),
        )
        self.reply(deployment, status=201)


class DeploymentHandler(MlopsHandler):
    @web.authenticated
    async def delete(self, deployment_id: str) -> None:
        from ..serving.manager import undeploy

        self.reply(await self.call(undeploy, deployment_id, settings=self.project()))


def _fractions(raw: Any) -> dict[str, float]:
    """Percent weights summing to 100 as the fractions the deployment manager takes."""
    if not isinstance(raw, dict) or not raw:
        raise bad_request('weights must be an object of version -> percent, e.g. {"1": 90}')
    weights: dict[str, float] = {}
    for version, percent in raw.items():
        if isinstance(percent, bool) or not isinstance(percent, (int, float)):
            raise bad_request(f"weight of version {version}: {percent!r} is not a number")
        if percent < 0:
            raise bad_request(f"weight of version {version} is negative ({percent})")
        weights[str(version)] = float(percent)
    total = sum(weights.values())
    if abs(total - 100) > 0.01:
        raise bad_request(f"weights are percents and must sum to 100, got {total:g}")
    return {v: w / 100 for v, w in weights.items()}


class TrafficHandler(MlopsHandler):
    @web.authenticated
    async def put(self, deployment_id: str) -> None:
        from ..serving.manager import set_traffic

        weights = _fractions(self.field(self.body(), "weights", dict))
        self.reply(await self.call(set_traffic, deployment_id, weights, settings=self.project()))


class SwitchHandler(MlopsHandler):
    @web.authenticated
    async def post(self, deployment_id: str) -> None:
        from ..serving.manager import switch

        spec = self.field(self.body(), "model", str)
        if not spec.strip():
            raise bad_request("field 'model' is empty: give a version (3), MODEL@ALIAS or MODEL/3")
        self.reply(await self.call(switch, deployment_id, spec.strip(), settings=self.project()))


class MonitorHandler(MlopsHandler):
    @web.authenticated
    async def get(self, deployment_id: str) -> None:
        from ..monitoring.status import monitor_status

        self.reply(await self.call(monitor_status, self.project(), deployment_id))

    @web.authenticated
    async def post(self, deployment_id: str) -> None:
        from ..monitoring.monitor import monitor

        body = self.body()
        result = await self.call(
            monitor,
            deployment_id,
            self.field(body, "window", (str, int, float), "1h"),
            act=self.field(body, "act", bool, True),
            settings=self.project(),
        )
        self.reply(result)


class AlertsHandler(MlopsHandler):
    @web.authenticated
    async def get(self) -> None:
        from ..monitoring.monitor import alerts

        found = await self.call(alerts, settings=self.project(), limit=self.int_arg("limit", 50))
        self.reply({"alerts": found, "count": len(found)})


class AuditHandler(MlopsHandler):
    @web.authenticated
    async def post(self) -> None:
        from ..audit import audit

        body = self.body()
        spec = self.field(body, "model", str)
        request = self.field(body, "request", str, None)
        if request is not None and not request.strip():
            raise bad_request("field 'request' is empty: give the x-request-id a server answered")
        settings = self.project()
        report = await self.call(audit, spec, request=request, settings=settings)
        self.reply(
            {
                "html": settings.relative(report.html),
                "markdown": settings.relative(report.markdown),
                "model": report.facts.model,
                "version": report.facts.version,
            }
        )


class UnknownRouteHandler(MlopsHandler):
    @web.authenticated
    def prepare_unknown(self) -> None:
        raise ApiError(404, "NotFound", f"no route {self.request.path} (see docs/rest-api.md)")

    get = post = put = delete = prepare_unknown


_NAME = r"(?P<%s>[^/]+)"

ROUTES: list[tuple[str, type[MlopsHandler]]] = [
    ("status", StatusHandler),
    ("runs", RunsHandler),
    ("notebooks/move", NotebookMoveHandler),
    (f"runs/{_NAME % 'run_id'}", RunHandler),
    ("compare", CompareHandler),
    ("pipelines", PipelinesHandler),
    ("models", ModelsHandler),
    (f"models/{_NAME % 'name'}/promote", PromoteHandler),
    (f"models/{_NAME % 'name'}/rollback", RollbackHandler),
    ("deployments", DeploymentsHandler),
    (f"deployments/{_NAME % 'deployment_id'}", DeploymentHandler),
    (f"deployments/{_NAME % 'deployment_id'}/traffic", TrafficHandler),
    (f"deployments/{_NAME % 'deployment_id'}/switch", SwitchHandler),
    (f"monitor/{_NAME % 'deployment_id'}", MonitorHandler),
    ("alerts", AlertsHandler),
    ("audit", AuditHandler),
]


def setup_route_handlers(web_app: Any, root_dir: str) -> None:
    """Register every route under ``{base_url}jupyter-mlops/api/``."""
    web_app.settings[ROOT_KEY] = root_dir
    base = url_path_join(web_app.settings["base_url"], "jupyter-mlops", "api")
    handlers: list[tuple[str, Any]] = [
        (url_path_join(base, path) + "/?$", handler) for path, handler in ROUTES
    ]
    handlers.append((url_path_join(base, ".*"), UnknownRouteHandler))
    web_app.add_handlers(".*$", handlers)
