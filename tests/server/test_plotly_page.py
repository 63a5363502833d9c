"""JupyterLab's page leaves out plotly 5's JupyterLab 3 build of jupyterlab-plotly (its
lumino 1 requirement warned on every load) and keeps this extension, whose renderer draws
plotly's figures; the browser test of a reopened panel checks the console."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from jupyter_mlops.server import plotly_page

CONFIG_DATA = re.compile(
    r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', re.S
)
#: where pip puts labextensions; pytest-jupyter's isolated paths leave it out
INSTALLED = str(Path(sys.prefix) / "share" / "jupyter" / "labextensions")


@pytest.fixture
def jp_root_dir(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def jp_server_config() -> dict[str, Any]:
    return {
        "ServerApp": {"jpserver_extensions": {"jupyterlab": True, "jupyter_mlops": True}},
        "LabApp": {"extra_labextensions_path": [INSTALLED]},
    }


def _installed_plotly_build() -> dict[str, Any] | None:
    from jupyterlab_server.config import get_federated_extensions

    return get_federated_extensions([INSTALLED]).get(plotly_page.NAME)


async def _page_extensions(jp_fetch: Any) -> list[str]:
    response = await jp_fetch("lab", method="GET")
    found = CONFIG_DATA.search(response.body.decode())
    assert found, "the lab page carries its page config"
    return [ext["name"] for ext in json.loads(found.group(1))["federated_extensions"]]


async def test_the_lab_page_leaves_out_plotly_5s_build_and_keeps_ours(jp_fetch: Any) -> None:
    build = _installed_plotly_build()
    if build is None or not plotly_page.built_for_jupyterlab_3(build):
        pytest.skip("no JupyterLab 3 build of jupyterlab-plotly installed (plotly 6 on)")
    names = await _page_extensions(jp_fetch)
    assert "jupyter-mlops" in names
    assert plotly_page.NAME not in names
    assert "@jupyter-widgets/jupyterlab-manager" in names  # only that one is left out


async def test_the_server_environment_can_keep_it(
    jp_fetch: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    if _installed_plotly_build() is None:
        pytest.skip("jupyterlab-plotly is not installed")
    monkeypatch.setenv(plotly_page.KEEP_ENV, "1")
    assert plotly_page.NAME in await _page_extensions(jp_fetch)


def test_a_jupyterlab_4_build_and_other_hooks_are_left_alone() -> None:
    page = {"federated_extensions": [{"name": plotly_page.NAME}, {"name": "jupyter-mlops"}]}
    plotly_6 = {plotly_page.NAME: {"dependencies": {"@lumino/widgets": "~2.4.0"}}}
    plotly_page.without_jupyterlab_3_plotly(page, plotly_6)
    assert [e["name"] for e in page["federated_extensions"]] == [plotly_page.NAME, "jupyter-mlops"]

    earlier = {"page_config_hook": lambda handler, config: {**config, "seen": True}}
    app = SimpleNamespace(settings=earlier)
    plotly_page.install(app)
    paths = SimpleNamespace(extra_labextensions_path=[], labextensions_path=[])
    handler = SimpleNamespace(extensionapp=paths)
    out = app.settings["page_config_hook"](handler, {"federated_extensions": []})
    assert out["seen"] is True  # the earlier hook still runs
