"""Keep plotly 5's ``jupyterlab-plotly`` off JupyterLab 4's page.

plotly 5 (which Evidently pins) installs a ``jupyterlab-plotly`` built for JupyterLab 3: it
wants lumino 1, so every page load warns "Unsatisfied version ... of shared singleton module
@lumino/widgets (required ^1.x)", and ``jupyter labextension list`` marks it incompatible.
JupyterLab loads a federated extension's code even when it is disabled, so disabling it does
not help. The page config hook below leaves such a build out of the page; the extension's
own renderer (``labextension/src/plotlyRenderer.ts``) draws plotly's mime type in its place.
A JupyterLab 4 build of ``jupyterlab-plotly`` (plotly 6 on) is left alone and renders first.

Set ``JUPYTER_MLOPS_KEEP_JUPYTERLAB_PLOTLY=1`` in the server's environment to keep it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

NAME = "jupyterlab-plotly"
KEEP_ENV = "JUPYTER_MLOPS_KEEP_JUPYTERLAB_PLOTLY"


def built_for_jupyterlab_3(package: dict[str, Any]) -> bool:
    """Whether a ``jupyterlab-plotly`` package.json is a JupyterLab 3 build (lumino 1).

    >>> built_for_jupyterlab_3({"dependencies": {"@lumino/widgets": "^1.8.1"}})
    True
    >>> built_for_jupyterlab_3({"dependencies": {"@lumino/widgets": "~2.4.0"}})
    False
    """
    wanted = str((package.get("dependencies") or {}).get("@lumino/widgets", ""))
    return wanted.lstrip("^~>=v ").startswith("1")


def without_jupyterlab_3_plotly(page_config: dict[str, Any], packages: dict[str, Any]) -> None:
    """Drop a JupyterLab 3 build of ``jupyterlab-plotly`` from the page's federated extensions;
    ``packages``: the federated extensions' package.json data, by name."""
    if os.environ.get(KEEP_ENV, "").strip() not in ("", "0"):
        return
    package = packages.get(NAME)
    if package is None or not built_for_jupyterlab_3(package):
        return
    page_config["federated_extensions"] = [
        ext for ext in page_config.get("federated_extensions", []) if ext.get("name") != NAME
    ]


def _installed_package(paths: list[str]) -> dict[str, Any]:
    """``jupyterlab-plotly``'s package.json from the first labextensions path that has one
    (the one JupyterLab serves), by name; empty when none has it."""
    for folder in paths:
        try:
            return {NAME: json.loads((Path(folder) / NAME / "package.json").read_text())}
        except (OSError, ValueError):
            continue
    return {}


def install(web_app: Any) -> None:
    """Chain the hook into the server's ``page_config_hook`` (another extension's stays)."""
    previous = web_app.settings.get("page_config_hook")

    def hook(handler: Any, page_config: dict[str, Any]) -> dict[str, Any]:
        if previous is not None:
            page_config = previous(handler, page_config)
        if not any(e.get("name") == NAME for e in page_config.get("federated_extensions", [])):
            return page_config  # not installed: nothing to read
        try:
            app = handler.extensionapp
            paths = list(app.extra_labextensions_path) + list(app.labextensions_path)
            without_jupyterlab_3_plotly(page_config, _installed_package(paths))
        except Exception:  # the page must load whatever happens here
            handler.log.debug("jupyter_mlops: page config hook skipped", exc_info=True)
        return page_config

    web_app.settings["page_config_hook"] = hook
