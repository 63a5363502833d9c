"""A project with a registered linear ONNX model in three versions (gates in mlops.yaml,
a reference sample on v1), shared by the panel tests (each leaves ``champion`` on v1), and
panels built against it."""

from __future__ import annotations

import html
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from jupyter_mlops import store
from jupyter_mlops.config import Settings, load_settings
from jupyter_mlops.registry.service import promote, register
from jupyter_mlops.widgets import Panel
from tests.conftest import stop_deployments
from tests.serving.conftest import linear_onnx

#: test_accuracy of each version's run: v2 fails the champion gate, v3 passes it
ACCURACY = {"1": 0.95, "2": 0.85, "3": 0.97}
WEIGHTS = {v: np.arange(12, dtype=np.float32).reshape(4, 3) / (10 * int(v)) for v in ACCURACY}
MLOPS_YAML = """\
registry:
  gates:
    champion:
      metrics: {test_accuracy: ">= 0.9"}
"""


def reference_frame(rows: int = 400, shift: float = 0.0, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        rng.normal(shift, 1.0, size=(rows, 4)).astype("float32"), columns=["a", "b", "c", "d"]
    )


@pytest.fixture(scope="package")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    import mlflow
    import mlflow.onnx

    root = tmp_path_factory.mktemp("widgets")
    (root / "mlops.yaml").write_text(MLOPS_YAML)
    saved = {k: os.environ.pop(k, None) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    settings = load_settings(root)
    store.use_fluent(settings)
    experiment = store.get_or_create_experiment(settings, "models")
    for version, accuracy in ACCURACY.items():
        with mlflow.start_run(experiment_id=experiment):
            mlflow.log_metric("test_accuracy", accuracy)
            info = mlflow.onnx.log_model(
                onnx_model=linear_onnx(WEIGHTS[version]),
                name="model",
                onnx_execution_providers=["CPUExecutionProvider"],
                # named, so MLflow skips inferring them in a subprocess (seconds per model)
                pip_requirements=["onnx", "onnxruntime"],
            )
            if version == "1":
                with tempfile.TemporaryDirectory() as tmp:
                    path = Path(tmp) / "reference.parquet"
                    reference_frame().to_parquet(path)
                    mlflow.log_artifact(str(path))
        register(info.model_uri, "lin", settings=settings)
    promote("lin", 1, "champion", settings=settings)
    try:
        yield settings
    finally:  # every model server a panel test started, whatever became of the tests
        try:
            stop_deployments(settings)
        finally:
            for key, value in saved.items():
                if value is not None:
                    os.environ[key] = value
            store.forget_clients()


@pytest.fixture
def make_panel(registry: Settings) -> Iterator[Any]:
    """Build panels against the registry; each is closed after the test."""
    built: list[Panel] = []

    def make(namespace: dict[str, Any] | None = None, tab: str = "runs") -> Panel:
        panel = Panel(namespace, settings=registry, tab=tab, live_every=None)
        built.append(panel)
        panel.wait()
        return panel

    yield make
    for panel in built:
        panel.close()


def text_of(widget_html: str) -> str:
    """What a user reads in an HTML widget: tags stripped, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", " ", widget_html))


def alias_version(settings: Settings, alias: str, name: str = "lin") -> str:
    return str(store.client(settings).get_model_version_by_alias(name, alias).version)
