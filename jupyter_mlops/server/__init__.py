"""Jupyter server extension: the authenticated REST API the JupyterLab sidebar reads.

Enabled by ``jupyter-config/server-config/jupyter_mlops.json``; the routes are listed in
``docs/rest-api.md``.
"""

from __future__ import annotations

from typing import Any


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "jupyter_mlops.server"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    from . import mlflow_ui, plotly_page
    from .routes import setup_route_handlers

    setup_route_handlers(serverapp.web_app, serverapp.root_dir)
    plotly_page.install(serverapp.web_app)
    mlflow_ui.ROOT = serverapp.root_dir
    serverapp.log.info("jupyter_mlops: REST API at %sjupyter-mlops/api/", serverapp.base_url)
