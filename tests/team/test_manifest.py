"""`jupyter mlops manifest`: KServe, Triton and MLServer files for a registered ONNX model."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import yaml
from click.testing import CliRunner

from jupyter_mlops.cli import main
from jupyter_mlops.exceptions import MlopsError, NotFoundError, UsageError
from jupyter_mlops.packaging.requirements import served_requirements
from jupyter_mlops.registry.service import promote, register
from jupyter_mlops.team.manifest import write_manifest
from tests.conftest import settings_for
from tests.serving.conftest import WEIGHTS, expected, linear_onnx

pytestmark = [pytest.mark.slow, pytest.mark.team]


@pytest.fixture
def model(project: Path) -> str:
    import mlflow
    import mlflow.onnx

    from jupyter_mlops import store

    settings = settings_for(project)
    store.use_fluent(settings)
    name = f"Lin_{uuid.uuid4().hex[:6]}"
    with mlflow.start_run(experiment_id=store.get_or_create_experiment(settings, name)):
        info = mlflow.onnx.log_model(
            onnx_model=linear_onnx(WEIGHTS["2"]), name="model",
            onnx_execution_providers=["CPUExecutionProvider"], pip_requirements=served_requirements(),
        )  # fmt: skip
    register(info.model_uri, name, settings=settings)
    promote(name, 1, "champion", settings=settings)
    return name


def _predicts_like_v2(onnx_file: Path) -> None:
    x = np.random.default_rng(0).normal(0, 1, (3, 4)).astype(np.float32)
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"input": x})[0], expected("2", x), rtol=1e-6)


def test_kserve_and_triton_files(project: Path, model: str) -> None:
    slug = model.lower().replace("_", "-")
    ran = CliRunner().invoke(main, ["manifest", f"{model}@champion", "--target", "kserve"])
    assert ran.exit_code == 0, ran.output
    out = project / "deploy" / "kserve" / f"{slug}-v1"
    assert f"kubectl apply -f deploy/kserve/{slug}-v1/inferenceservice.yaml" in ran.output
    service = yaml.safe_load((out / "inferenceservice.yaml").read_text())
    assert service["kind"] == "InferenceService"
    assert service["metadata"]["name"] == slug
    predictor = service["spec"]["predictor"]["model"]
    assert predictor["modelFormat"] == {"name": "onnx"}
    assert predictor["protocolVersion"] == "v2"
    assert predictor["storageUri"] == f"pvc://model-store/model_repository/{slug}"
    repo = out / "model_repository" / slug
    _predicts_like_v2(repo / "1" / "model.onnx")

    triton = write_manifest(f"{model}@champion", "triton", settings=settings_for(project))
    assert triton.files == [
        f"model_repository/{slug}/config.pbtxt",
        f"model_repository/{slug}/1/model.onnx",
    ]
    config = (project / triton.directory / triton.files[0]).read_text()
    assert re.search(rf'^name: "{slug}"$', config, re.M)
    assert 'backend: "onnxruntime"' in config
    tensors = re.findall(r'name: "(\w+)" data_type: (\w+) dims: \[ ([-\d, ]+) \]', config)
    assert tensors == [("input", "TYPE_FP32", "-1, 4"), ("output", "TYPE_FP32", "-1, 3")]
    assert config.count("{") == config.count("}") and config.count("[") == config.count("]")
    _predicts_like_v2(project / triton.directory / triton.files[1])


def test_mlserver_settings_point_at_the_mlflow_onnx_model(project: Path, model: str) -> None:
    result = write_manifest(f"{model}/1", "mlserver", "serve-here", settings=settings_for(project))
    root = project / "serve-here"
    slug = model.lower().replace("_", "-")
    model_settings = json.loads((root / slug / "model-settings.json").read_text())
    assert model_settings["implementation"] == "mlserver_mlflow.MLflowRuntime"
    assert model_settings["parameters"] == {"uri": "./model", "version": "1"}
    mlmodel = yaml.safe_load((root / slug / "model" / "MLmodel").read_text())
    onnx_name = mlmodel["flavors"]["onnx"]["data"]
    _predicts_like_v2(root / slug / "model" / onnx_name)
    assert f"{slug}/model/{onnx_name}" in result.files


def test_bad_manifest_requests(project: Path, model: str) -> None:
    settings = settings_for(project)
    with pytest.raises(
        UsageError, match=r"unknown target 'sagemaker' \(known: kserve, triton, mlserver\)"
    ):
        write_manifest(f"{model}@champion", "sagemaker", settings=settings)
    with pytest.raises(NotFoundError):
        write_manifest(f"{model}@nope", "triton", settings=settings)
    write_manifest(f"{model}@champion", "triton", "out", settings=settings)
    with pytest.raises(MlopsError, match="out is not empty: choose another --out"):
        write_manifest(f"{model}@champion", "triton", "out", settings=settings)
    with pytest.raises(MlopsError, match="outside the project directory"):
        write_manifest(f"{model}@champion", "triton", "../elsewhere", settings=settings)
    cli = CliRunner().invoke(main, ["manifest", f"{model}@champion", "--target", "onnx"])
    assert (
        cli.exit_code == 2 and "'onnx' is not one of 'kserve', 'triton', 'mlserver'" in cli.output
    )
    missing = CliRunner().invoke(main, ["manifest", "no-such-model@champion", "--target", "triton"])
    assert (
        missing.exit_code == 1 and "error:" in missing.output and "no-such-model" in missing.output
    )
