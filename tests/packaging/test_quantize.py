"""Dynamic quantization: real dynamo export, onnxruntime's real quantizer and runtime, a real
SQLite store."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow.pyfunc
import numpy as np
import onnx
import pytest
import torch
from sklearn.ensemble import RandomForestClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from torch import nn

from jupyter_mlops import store
from jupyter_mlops.packaging.errors import PackagingError, QuantizedParityError
from jupyter_mlops.packaging.package import package
from tests.conftest import runs_of_kind, settings_for
from tests.packaging.test_tables import customers, preprocessing

pytestmark = pytest.mark.slow

#: operators only a dynamically quantized graph holds
QUANTIZED_OPS = {"DynamicQuantizeLinear", "MatMulInteger", "DynamicQuantizeLSTM"}


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))


class Tagger(nn.Module):
    """An LSTM over a sequence of feature vectors, a score per step."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.lstm = nn.LSTM(8, 32, batch_first=True)
        self.head = nn.Linear(32, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.head(out)


def ops(path: str | Path) -> set[str]:
    return {node.op_type for node in onnx.load(str(path)).graph.node}


def test_quantized_mlp_is_served_and_both_checks_are_recorded(project: Path) -> None:
    result = package(mlp(), torch.rand(16, 64), name="digits", quantize=True)
    float_check, quantized_check = result.parity, result.parity["quantized"]
    assert float_check["passed"] and float_check["max_abs_diff"] < 1e-5
    assert quantized_check["passed"] and quantized_check["tolerance"] == 0.05
    assert float_check["max_abs_diff"] < quantized_check["max_abs_diff"] < 0.05
    # the quantized model is checked on the float check's batches
    assert quantized_check["batch_sizes"] == float_check["batch_sizes"] == [16, 1, 3, 17]
    summary = result.quantization
    assert summary is not None
    assert (summary["mode"], summary["weight_type"], summary["quantized_weights"]) == (
        "dynamic",
        "int8",
        4,  # a weight and its zero point for each of the two Linear layers
    )
    assert summary["size_bytes"] == result.size_bytes < summary["float_size_bytes"] / 2
    assert QUANTIZED_OPS & ops(result.path) == {"DynamicQuantizeLinear", "MatMulInteger"}

    settings = settings_for(project)
    client = store.client(settings)
    run = client.get_run(result.run_id)
    metrics, tags = run.data.metrics, run.data.tags
    assert metrics["mlops.parity_max_abs_diff"] == float_check["max_abs_diff"]
    assert metrics["mlops.quantized_parity_max_abs_diff"] == quantized_check["max_abs_diff"]
    assert metrics["mlops.quantized_parity_tolerance"] == 0.05
    assert metrics["mlops.quantized_size_bytes"] == summary["size_bytes"]
    assert metrics["mlops.float_size_bytes"] == summary["float_size_bytes"]
    assert tags["mlops.quantized"] == "dynamic-int8"
    assert tags["mlops.parity_passed"] == "true"
    assert json.loads(tags["mlops.parity"])["quantized"]["max_abs_diff"] == pytest.approx(
        quantized_check["max_abs_diff"]
    )
    assert json.loads(tags["mlops.quantization"])["size_bytes"] == summary["size_bytes"]

    # MLflow's model is the quantized graph; the float one is an artifact beside it
    store.use_fluent(settings)
    logged = mlflow.pyfunc.load_model(result.model_uri)
    model_dir = Path(mlflow.artifacts.download_artifacts(result.model_uri, dst_path=str(project)))
    assert QUANTIZED_OPS & ops(model_dir / "model.onnx")
    float_file = client.download_artifacts(result.run_id, "model.float.onnx", str(project))
    assert not QUANTIZED_OPS & ops(float_file)
    batch = np.random.default_rng(1).random((4, 64), dtype=np.float32)
    out = logged.predict(batch)
    got = np.asarray(out["output"] if isinstance(out, dict) else out)
    want = mlp()(torch.from_numpy(batch)).detach().numpy()
    assert np.abs(got - want).max() < 0.05
    card = Path(client.download_artifacts(result.run_id, "model_card.md", str(project))).read_text()
    assert "## Quantization (the served model)" in card
    assert "- dynamic quantization, int8 weights (4 weight tensors)" in card
    assert f"(float model: {summary['float_size_bytes']} bytes" in card


def test_quantized_lstm_is_checked_at_every_sequence_length(project: Path) -> None:
    result = package(
        Tagger(), torch.rand(4, 10, 8), name="tagger", dynamic={"input": {1: "seq"}}, quantize=True
    )
    assert "DynamicQuantizeLSTM" in ops(result.path)
    # the served file declares the float model's inputs and outputs, whatever shape inference
    # before quantizing made of them
    float_file = Path(result.path).with_name("model.float.onnx")
    for role in ("input", "output"):
        assert [v.type for v in getattr(onnx.load(result.path).graph, role)] == [
            v.type for v in getattr(onnx.load(str(float_file)).graph, role)
        ]
    quantized_check = result.parity["quantized"]
    assert quantized_check["passed"] and quantized_check["max_abs_diff"] < 0.05
    assert quantized_check["axis_sizes"] == result.parity["axis_sizes"] == {"seq": [10, 13]}


def test_quantized_beyond_its_budget_names_both_figures_and_logs_nothing(project: Path) -> None:
    with pytest.raises(QuantizedParityError) as err:
        package(mlp(), torch.rand(16, 64), name="strict", quantize=True, quantized_tolerance=1e-6)
    message = str(err.value)
    assert message.startswith(
        "the quantized model is too far from the trained model: max absolute difference"
    )
    assert "> quantized_tolerance 1e-06" in message
    assert f"the float ONNX model is within {err.value.float_max_abs:.3g} of it" in message
    assert "(tolerance 0.0001): raise quantized_tolerance= if that loss is acceptable" in message
    assert err.value.max_abs > 1e-6 > err.value.float_max_abs
    assert runs_of_kind(project, "package") == []


def test_models_that_cannot_be_quantized_are_refused(project: Path) -> None:
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    forest = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)
    with pytest.raises(PackagingError) as err:
        package(forest, X[:20], name="forest", quantize=True)
    assert str(err.value) == (
        "quantize=True: this model has nothing dynamic quantization can make int8 (a tree "
        "ensemble holds split thresholds, not weight matrices; its graph has "
        "TreeEnsembleClassifier): package it without quantize=True"
    )
    with pytest.raises(PackagingError) as err:
        package(nn.Sequential(nn.ReLU()), torch.rand(4, 6), name="relu", quantize=True)
    assert "(none of its weights feeds a MatMul, Gemm, Conv, LSTM, Attention or Gather node;" in (
        str(err.value)
    )
    with pytest.raises(PackagingError) as err:
        package(mlp(), torch.rand(4, 64), name="static", quantize="static")
    assert str(err.value) == (
        "quantize='static': pass True (or 'dynamic') for onnxruntime's dynamic quantization; "
        "static quantization needs calibration data and is not offered"
    )
    with pytest.raises(PackagingError, match="quantized_tolerance must be >= 0, got -1"):
        package(mlp(), torch.rand(4, 64), name="neg", quantize=True, quantized_tolerance=-1)
    assert runs_of_kind(project, "package") == []


def test_quantized_table_pipeline_with_a_neural_network(project: Path) -> None:
    frame = customers(400)
    target = (frame["city"].isin(["Paris", "Nice"]) ^ (frame["income"] > 50_000)).astype(int)
    model = Pipeline(
        [("prep", preprocessing()), ("clf", MLPClassifier((16,), max_iter=300, random_state=0))]
    ).fit(frame, target)
    result = package(model, frame.head(40), name="churn-mlp", quantize=True)
    assert result.quantization is not None and result.quantization["quantized_weights"] >= 2
    assert "MatMulInteger" in ops(result.path)
    quantized_check = result.parity["quantized"]
    assert quantized_check["passed"] and quantized_check["max_abs_diff"] < 0.05
    # the same batches as the float check: perturbed categories and missing values too
    assert quantized_check["checked"] == result.parity["checked"]
    assert [i["name"] for i in result.signature["inputs"]] == list(frame.columns)
