"""The whole loop against whatever store the `project` fixture points at: the per-test SQLite
file by default, a shared MLflow tracking server on PostgreSQL under scripts/team-tests.sh.

Tests sharing one server must not see each other's records: every experiment, pipeline and
model name here is unique to the test, and every query is scoped to it.
"""

from __future__ import annotations

import json
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from jupyter_mlops import store
from jupyter_mlops.exceptions import NotFoundError
from jupyter_mlops.monitoring.monitor import monitor
from jupyter_mlops.packaging.requirements import served_requirements
from jupyter_mlops.pipelines.runner import run_pipeline
from jupyter_mlops.registry.service import promote, register, rollback
from jupyter_mlops.serving import manager
from tests.conftest import (
    TEAM_SERVER,
    drain,
    execute_notebook,
    runs_of_kind,
    settings_for,
    write_notebook,
)
from tests.pipelines.helpers import diamond
from tests.serving.conftest import WEIGHTS, expected, linear_onnx

pytestmark = [pytest.mark.slow, pytest.mark.team]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_the_store_is_the_one_the_run_was_pointed_at(project: Path) -> None:
    settings = settings_for(project)
    if TEAM_SERVER:
        assert settings.tracking_uri == TEAM_SERVER == settings.registry_uri
        assert not settings.is_embedded
    else:
        assert settings.tracking_uri.startswith("sqlite:///")


def test_cells_drain_to_the_store(project: Path) -> None:
    name = unique("notebook") + ".ipynb"
    path = write_notebook(
        project / name,
        ["%load_ext jupyter_mlops", "lr = 0.05\nepochs = 3", "val_loss = 0.25", "x = 1"],
    )
    execute_notebook(path)
    drain(project)
    cells = runs_of_kind(project, "cell", experiment=name)
    assert [c.info.status for c in cells] == ["FINISHED"] * 3
    assert cells[0].data.params == {"lr": "0.05", "epochs": "3"}
    assert cells[1].data.metrics["val_loss"] == 0.25
    [session] = runs_of_kind(project, "session", experiment=name)
    assert {c.data.tags["mlflow.parentRunId"] for c in cells} == {session.info.run_id}


def test_a_pipeline_caches_and_its_artifacts_come_back(project: Path) -> None:
    path = diamond(project)
    spec = yaml.safe_load(path.read_text())
    spec["name"] = unique("diamond")
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    first = run_pipeline(path, {"x": "2"}, parallel=2, progress=False)
    assert first.steps["d"].outputs == {"total": 45}
    again = run_pipeline(path, {"x": "2"}, progress=False)
    assert [s.status for s in again.steps.values()] == ["CACHED"] * 4
    client = store.client(settings_for(project))
    d_run = first.steps["d"].run_id
    assert d_run is not None
    with tempfile.TemporaryDirectory() as tmp:
        local = client.download_artifacts(d_run, "d.ipynb", tmp)
        assert json.loads(Path(local).read_text())["cells"]
    assert len(runs_of_kind(project, "pipeline", experiment=spec["name"])) == 2


def _log_model(project: Path, version: str, model: str) -> None:
    import mlflow
    import mlflow.onnx

    settings = settings_for(project)
    store.use_fluent(settings)
    experiment = store.get_or_create_experiment(settings, model)
    rng = np.random.default_rng(int(version))
    with mlflow.start_run(experiment_id=experiment):
        info = mlflow.onnx.log_model(
            onnx_model=linear_onnx(WEIGHTS[version]), name="model",
            onnx_execution_providers=["CPUExecutionProvider"], pip_requirements=served_requirements(),
        )  # fmt: skip
        with tempfile.TemporaryDirectory() as tmp:
            ref = pd.DataFrame(rng.normal(0, 1, (500, 4)), columns=["a", "b", "c", "d"])
            ref.to_parquet(Path(tmp) / "reference.parquet")
            mlflow.log_artifact(str(Path(tmp) / "reference.parquet"))
    register(info.model_uri, model, settings=settings)


def _predict(url: str, rows: np.ndarray) -> np.ndarray:
    body = json.dumps({"inputs": rows.tolist()}).encode()
    request = urllib.request.Request(
        f"{url}/invocations", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return np.asarray(json.loads(response.read())["predictions"]["output"], dtype=np.float32)


def _captured(deployment_id: str, settings: Any) -> int:
    try:
        return len(manager.inference_log(deployment_id, settings=settings))
    except NotFoundError:  # nothing written yet
        return 0


@pytest.mark.timeout(600)  # two models, a model server and a monitor on a busy machine
def test_registry_deployment_and_monitor(project: Path, stop_later: Callable[[Any], None]) -> None:
    settings = settings_for(project)
    model = unique("lin")
    _log_model(project, "1", model)
    _log_model(project, "2", model)
    assert promote(model, 1, "champion", settings=settings).verdict
    promote(model, 2, "champion", settings=settings)
    back = rollback(model, "champion", "v2 misbehaves", settings=settings)
    assert (back.from_version, back.to_version) == ("2", "1")

    d = manager.deploy(f"{model}@champion", name=unique("prod"), settings=settings)
    stop_later(d.pid)  # in case undeploy itself fails
    try:
        rows = np.random.default_rng(3).normal(0, 1, (200, 4)).astype(np.float32)
        assert np.allclose(_predict(d.url, rows[:5]), expected("1", rows[:5]), atol=1e-5)
        for i in range(0, len(rows), 50):
            _predict(d.url, rows[i : i + 50])
        # the capture writer flushes on its own schedule: wait for every row to be on disk
        deadline = time.monotonic() + 60
        while _captured(d.id, settings) < 205 and time.monotonic() < deadline:
            time.sleep(0.1)
        result = monitor(d.id, "1h", act=False, settings=settings)
        assert (result.rows, result.version) == (205, "1")
        run = store.client(settings).get_run(result.run_id)
        assert run.data.tags["mlops.kind"] == "monitor"
        assert "drift.json" in {
            a.path for a in store.client(settings).list_artifacts(run.info.run_id)
        }
    finally:
        manager.undeploy(d.id, settings=settings)
