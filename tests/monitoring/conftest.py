"""Fixtures of the monitoring tests: a project with a registered, promoted iris classifier."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from jupyter_mlops import store
from jupyter_mlops.config import Settings, load_settings
from jupyter_mlops.registry.service import promote
from tests.conftest import stop_deployments
from tests.monitoring.iris import register_iris


@pytest.fixture
def iris_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """A project with ``iris`` v1 and v2 (v2 the champion, v1 held it before)."""
    root = tmp_path / "project"
    root.mkdir()
    (root / "mlops.yaml").write_text("")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    monkeypatch.chdir(root)
    settings = load_settings(root)
    store.use_fluent(settings)
    register_iris(settings, 1.0)
    register_iris(settings, 0.5)
    promote("iris", 1, "champion", settings=settings)
    promote("iris", 2, "champion", settings=settings)
    try:
        yield settings
    finally:  # every model server the test started, passed or failed
        try:
            stop_deployments(settings)
        finally:
            store.forget_clients()
