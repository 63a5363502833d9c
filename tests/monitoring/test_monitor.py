"""monitor() against real deployments, a real registry and a real pipeline."""

from __future__ import annotations

import json
import os
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from jupyter_mlops import store
from jupyter_mlops.cli import main
from jupyter_mlops.config import Settings, load_settings
from jupyter_mlops.exceptions import ConfigError, MlopsError, NotFoundError
from jupyter_mlops.monitoring.drift import DriftInputError
from jupyter_mlops.monitoring.monitor import alerts, monitor
from jupyter_mlops.packaging.requirements import served_requirements
from jupyter_mlops.registry.service import promote, register
from jupyter_mlops.serving import manager
from tests.conftest import stop_deployments, wait_for_capture, wait_until
from tests.pipelines.helpers import pipeline_file, step_notebook
from tests.serving.conftest import WEIGHTS, linear_onnx

pytestmark = pytest.mark.slow
RNG = np.random.default_rng(0)


def _register(settings: Settings, version: str, with_reference: bool = True) -> None:
    import mlflow
    import mlflow.onnx

    experiment = store.get_or_create_experiment(settings, "models")
    with mlflow.start_run(experiment_id=experiment) as run:
        info = mlflow.onnx.log_model(
            onnx_model=linear_onnx(WEIGHTS[version]), name="model",
            onnx_execution_providers=["CPUExecutionProvider"], pip_requirements=served_requirements(),
        )  # fmt: skip
        if with_reference:
            ref = pd.DataFrame(RNG.normal(0, 1, (2000, 4)), columns=["a", "b", "c", "d"])
            with tempfile.TemporaryDirectory() as tmp:
                ref.to_parquet(Path(tmp) / "reference.parquet")
                mlflow.log_artifact(str(Path(tmp) / "reference.parquet"))
    assert run.info.run_id
    register(info.model_uri, "lin", settings=settings)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    root = tmp_path / "project"
    root.mkdir()
    (root / "mlops.yaml").write_text("")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    monkeypatch.chdir(root)
    settings = load_settings(root)
    store.use_fluent(settings)
    _register(settings, "1")
    _register(settings, "2")
    promote("lin", 1, "champion", settings=settings)
    promote("lin", 2, "champion", settings=settings)
    try:
        yield settings
    finally:  # every model server the test started, passed or failed
        try:
            stop_deployments(settings)
        finally:
            store.forget_clients()


def send(url: str, rows: np.ndarray, batch: int = 50) -> None:
    for i in range(0, len(rows), batch):
        body = json.dumps({"inputs": rows[i : i + batch].tolist()}).encode()
        request = urllib.request.Request(
            f"{url}/invocations", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200


def settle(settings: Settings, deployment_id: str, rows: int) -> float:
    """Until ``rows`` rows of the deployment's traffic are captured (the server writes them
    on its own schedule); the epoch time of the newest."""
    return float(wait_for_capture(deployment_id, settings, rows)["time"].max().timestamp())


def past(moment: float, seconds: float) -> float:
    """Now, once the clock is ``seconds`` past ``moment``: a window that starts now leaves
    out the requests captured until ``moment``."""
    return wait_until(
        lambda: now if (now := time.time()) > moment + seconds else None,
        f"{seconds:g} s after the last captured request",
    )


def test_normal_traffic_passes_shifted_traffic_alerts(project: Settings) -> None:
    d = manager.deploy("lin@champion", name="prod", settings=project)
    send(d.url, RNG.normal(0, 1, (600, 4)))
    last_calm = settle(project, "prod", 600)
    calm = monitor("prod", "1h", settings=project)
    assert not calm.triggered and calm.actions == []
    assert calm.rows == 600 and calm.version == "2"
    assert sum(calm.prediction_shares.values()) == pytest.approx(1.0)
    assert alerts(settings=project) == []
    # the windows below are measured from now: the calm traffic must lie outside them
    started = past(last_calm, 1.0)
    shifted = RNG.normal(0, 1, (600, 4))
    shifted[:, :3] += 3.0
    send(d.url, shifted)
    settle(project, "prod", 1200)
    window = f"{time.time() - started + 0.5:.1f}s"
    hot = monitor("prod", window, settings=project)
    assert hot.triggered and hot.actions == ["alert"]
    assert hot.drift["drifted_columns"] == ["f0", "f1", "f2"]
    [alert] = alerts(settings=project)
    assert (alert["deployment"], alert["version"], alert["run_id"]) == ("prod", "2", hot.run_id)
    client = store.client(project)
    run = client.get_run(hot.run_id)
    assert run.data.tags["mlops.kind"] == "monitor"
    assert run.data.tags["mlops.alert"] == "true"
    assert run.data.metrics["drift.share_drifted"] == 0.75
    assert {a.path for a in client.list_artifacts(hot.run_id)} == {
        "drift.json",
        "drift_figure.json",
    }

    runner = CliRunner()
    window = f"{time.time() - started + 0.5:.1f}s"  # still only the shifted traffic
    result = runner.invoke(main, ["monitor", "prod", "--window", window, "--no-act"])
    assert result.exit_code == 3, result.output
    assert "3 of 4 columns drifted (75%)" in result.output
    listed = runner.invoke(main, ["alerts"])
    assert "prod" in listed.output and "f0, f1, f2" in listed.output


def test_rollback_policy_moves_alias_and_traffic_back(project: Settings) -> None:
    (project.project_dir / "mlops.yaml").write_text(
        "monitoring:\n  drift_share: 0.5\n  actions: [alert, rollback]\n"
    )
    project = load_settings(project.project_dir)
    d = manager.deploy("lin@champion", name="prod", follow=True, settings=project)
    shifted = RNG.normal(0, 1, (400, 4)) + 5
    send(d.url, shifted)
    settle(project, "prod", 400)
    result = monitor("prod", "1h", settings=project)
    assert result.actions == ["alert", "rollback lin@champion v2 -> v1"]
    client = store.client(project)
    assert str(client.get_model_version_by_alias("lin", "champion").version) == "1"
    assert manager.get_deployment("prod", settings=project).weights == {"1": 1.0}


def test_retrain_policy_runs_the_pipeline(project: Settings) -> None:
    root = project.project_dir
    step_notebook(
        root / "retrain.ipynb", "n = 1", 'import jupyter_mlops\njupyter_mlops.output("n", n)'
    )
    pipeline_file(
        root / "retrain.yaml",
        {"name": "retrain", "steps": {"s": {"notebook": "retrain.ipynb", "outputs": ["n"]}}},
    )
    (root / "mlops.yaml").write_text(
        "monitoring:\n  actions: [alert, retrain]\n  retrain_pipeline: retrain.yaml\n"
    )
    project = load_settings(root)
    d = manager.deploy("lin@champion", name="prod", settings=project)
    send(d.url, RNG.normal(0, 1, (300, 4)) + 5)
    settle(project, "prod", 300)
    result = monitor("prod", "1h", settings=project)
    assert result.actions[0] == "alert"
    assert result.actions[1].startswith("retrain FINISHED (pipeline run ")


def test_bad_inputs(project: Settings) -> None:
    with pytest.raises(NotFoundError, match="no deployment 'ghost'"):
        monitor("ghost", settings=project)
    d = manager.deploy("lin/1", name="quiet", settings=project)
    with pytest.raises(NotFoundError, match="deployment 'quiet' has no captured traffic"):
        monitor("quiet", settings=project)
    send(d.url, RNG.normal(0, 1, (10, 4)))
    past(settle(project, "quiet", 10), 1.5)  # the window of 1 s below holds none of them
    with pytest.raises(DriftInputError, match="quiet received no requests in the last 1s"):
        monitor("quiet", "1s", settings=project)
    with pytest.raises(MlopsError, match="window 'soon': write it like 15m, 1h or 2d"):
        monitor("quiet", "soon", settings=project)
    (project.project_dir / "mlops.yaml").write_text("monitoring:\n  actions: [panic]\n")
    with pytest.raises(
        ConfigError, match=r"monitoring\.actions: must be a list of alert, rollback, retrain"
    ):
        monitor("quiet", settings=load_settings(project.project_dir))
    (project.project_dir / "mlops.yaml").write_text("monitoring:\n  actions: [retrain]\n")
    with pytest.raises(ConfigError, match=r"the retrain action needs monitoring\.retrain_pipeline"):
        monitor("quiet", settings=load_settings(project.project_dir))
    (project.project_dir / "mlops.yaml").write_text("")
    _register(project, "1", with_reference=False)
    bare = manager.deploy("lin/3", name="bare", settings=project)
    send(bare.url, RNG.normal(0, 1, (10, 4)))
    settle(project, "bare", 10)
    with pytest.raises(NotFoundError, match=r"lin v3 was packaged without a reference sample"):
        monitor("bare", settings=project)
    assert os.path.exists(project.state_dir / "inference" / "bare")
