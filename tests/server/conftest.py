"""A served project for the REST tests: a real SQLite store with tracked cell runs fed
through real journals, a two-version model with gates, and pytest-jupyter's server with the
extension enabled by the same config file the package installs."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

# fixtures imported here, not as a plugin, stay inside tests/server: pytest-jupyter's
# autouse event-loop fixtures must not wrap the rest of the suite
from pytest_jupyter.jupyter_server import *  # noqa: F403

from jupyter_mlops import store
from jupyter_mlops.config import Settings, load_settings
from jupyter_mlops.packaging.requirements import served_requirements
from jupyter_mlops.registry.service import promote, register
from jupyter_mlops.tracking.journal import JournalPaths, JournalWriter
from tests.conftest import ENV_KEYS, stop_deployments
from tests.serving.conftest import WEIGHTS, linear_onnx

SERVER_CONFIG = Path(__file__).parents[2] / "jupyter-config/server-config/jupyter_mlops.json"
MLOPS_YAML = """\
registry:
  gates:
    production:
      metrics: {test_accuracy: ">= 0.9"}
"""
ACCURACY = {"1": 0.95, "2": 0.80}


def _register(settings: Settings, version: str) -> None:
    import mlflow
    import mlflow.onnx

    experiment = store.get_or_create_experiment(settings, "models")
    with mlflow.start_run(experiment_id=experiment):
        mlflow.log_metric("test_accuracy", ACCURACY[version])
        info = mlflow.onnx.log_model(
            onnx_model=linear_onnx(WEIGHTS[version]),
            name="model",
            onnx_execution_providers=["CPUExecutionProvider"],
            pip_requirements=served_requirements(),
        )
        reference = pd.DataFrame(
            np.random.default_rng(0).normal(0, 1, (1000, 4)), columns=["a", "b", "c", "d"]
        )
        with tempfile.TemporaryDirectory() as tmp:
            reference.to_parquet(Path(tmp) / "reference.parquet")
            mlflow.log_artifact(str(Path(tmp) / "reference.parquet"))
    register(info.model_uri, "lin", settings=settings)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """The project the server serves: its root is the project directory."""
    root = tmp_path_factory.mktemp("served")
    (root / "mlops.yaml").write_text(MLOPS_YAML)
    with pytest.MonkeyPatch.context() as mp:
        for key in ENV_KEYS:
            mp.delenv(key, raising=False)
        settings = load_settings(root)
        store.client(settings)
        try:
            yield settings
        finally:  # every model server a REST test started, whatever became of the tests
            try:
                stop_deployments(settings)
            finally:
                store.forget_clients()


@pytest.fixture(scope="module")
def lin(served: Settings) -> Settings:
    """Model ``lin``: v1 (test_accuracy 0.95) holds ``champion``, v2 (0.80) none."""
    store.use_fluent(served)
    _register(served, "1")
    _register(served, "2")
    promote("lin", 1, "champion", settings=served)
    return served


@pytest.fixture
def jp_root_dir(served: Settings) -> Path:
    return served.project_dir


@pytest.fixture
def jp_server_config() -> dict[str, Any]:
    config: dict[str, Any] = json.loads(SERVER_CONFIG.read_text())
    return config


@pytest.fixture
def jp_base_url() -> str:
    return "/base%20url/"


class Session:
    """Writes journal records exactly as a kernel's ``CellRecorder`` does."""

    def __init__(self, settings: Settings, notebook: str):
        self.settings = settings
        self.id = os.urandom(8).hex()
        self.paths = JournalPaths.for_session(settings.journal_dir, self.id)
        self.writer = JournalWriter(self.paths)
        self.count = 0
        path = settings.project_dir / notebook
        self.writer.append(
            {
                "type": "session_start",
                "session": self.id,
                "time": _now(),
                "experiment": settings.relative(path),
                "notebook": str(path),
                "run_name": "session",
                "tags": {"mlops.kernel_pid": os.getpid()},
            }
        )

    def cell(
        self,
        source: str,
        params: dict[str, Any] | None = None,
        metrics: dict[str, float] | None = None,
        error: dict[str, str] | None = None,
    ) -> str:
        self.count += 1
        start = _now()
        end = _now()
        while end <= start:  # distinct start times keep "newest first" well defined
            time.sleep(0.001)
            end = _now()
        record: dict[str, Any] = {
            "type": "cell",
            "id": os.urandom(16).hex(),
            "session": self.id,
            "start": start,
            "end": end,
            "time": end,
            "duration_s": (end - start) / 1000,
            "execution_count": self.count,
            "cell_id": f"cell-{self.count}",
            "source": source,
            "source_hash": hashlib.sha1(source.encode()).hexdigest(),
            "status": "FAILED" if error else "FINISHED",
            "params": params or {},
            "metrics": [[k, v, 0, end] for k, v in (metrics or {}).items()],
        }
        if error:
            record["error"] = error
        self.writer.append(record)
        return str(record["id"])

    def end(self) -> None:
        self.writer.append(
            {"type": "session_end", "session": self.id, "time": _now(), "status": "FINISHED"}
        )
        self.writer.close()


def _now() -> int:
    return int(time.time() * 1000)


Api = Any


@pytest.fixture
def api(jp_fetch: Any) -> Api:
    """``await api("GET", "runs", params=...)`` -> (response, JSON body or None)."""

    async def call(
        method: str,
        path: str,
        *,
        body: Any = None,
        # a list of pairs repeats a key: [("run", a), ("run", b)]
        params: dict[str, Any] | list[tuple[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[Any, Any]:
        # deploying starts a model server and monitoring imports its libraries: on a busy
        # 2-core machine that can take longer than jp_fetch's 20 s default
        kwargs: dict[str, Any] = {
            "method": method,
            "raise_error": False,
            "headers": headers,
            "request_timeout": 120,
        }
        if body is not None:
            kwargs["body"] = body if isinstance(body, (str, bytes)) else json.dumps(body)
        elif method in ("POST", "PUT"):
            kwargs["body"] = b""
        response = await jp_fetch("jupyter-mlops", "api", path, params=params, **kwargs)
        data = json.loads(response.body) if response.body else None
        return response, data

    return call
