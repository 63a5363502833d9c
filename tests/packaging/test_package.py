"""Real torch export, real onnxruntime, a real SQLite store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
import torch
from torch import nn

from jupyter_mlops import store
from jupyter_mlops.packaging.errors import ExportError, PackagingError, ParityError
from jupyter_mlops.packaging.package import package
from tests.conftest import (
    cell_text,
    drain,
    execute_notebook,
    runs_of_kind,
    settings_for,
    write_notebook,
)

pytestmark = pytest.mark.slow


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Any:
    import os

    root = tmp_path_factory.mktemp("pkg")
    (root / "mlops.yaml").write_text("")
    saved = os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.environ.pop("MLFLOW_REGISTRY_URI", None)
    try:
        example = torch.rand(8, 64)
        reference = pd.DataFrame(np.random.default_rng(0).random((300, 64)))
        result = package(
            mlp(),
            example,
            name="digits",
            reference=reference,
            metrics={"test_accuracy": 0.97},
            settings=settings_for(root),
        )
        yield root, result
    finally:
        if saved is not None:
            os.environ["MLFLOW_TRACKING_URI"] = saved
        store.forget_clients()


def test_parity_signature_and_file(packaged: Any) -> None:
    _, result = packaged
    assert result.parity["passed"] is True
    assert result.parity["max_abs_diff"] < 1e-5
    assert result.parity["batch_sizes"] == [8, 1, 3, 17]
    assert result.signature == {
        "inputs": [{"name": "input", "dtype": "float32", "shape": [-1, 64]}],
        "outputs": [{"name": "output", "dtype": "float32", "shape": [-1, 10]}],
    }
    assert result.opset >= 18
    session = ort.InferenceSession(result.path, providers=["CPUExecutionProvider"])
    assert session.run(None, {"input": np.zeros((5, 64), np.float32)})[0].shape == (5, 10)


def test_logged_as_mlflow_onnx_model_with_card_and_reference(packaged: Any) -> None:
    root, result = packaged
    settings = settings_for(root)
    client = store.client(settings)
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["mlops.kind"] == "package"
    assert run.data.tags["mlops.parity_passed"] == "true"
    assert run.data.metrics["test_accuracy"] == 0.97
    assert run.data.metrics["mlops.parity_max_abs_diff"] == result.parity["max_abs_diff"]
    names = {a.path for a in client.list_artifacts(result.run_id)}
    assert {"model_card.md", "reference.parquet"} <= names
    card = Path(client.download_artifacts(result.run_id, "model_card.md", str(root))).read_text()
    assert "# Model card: digits" in card
    assert "| test_accuracy | 0.97 |" in card
    assert "| input | input | float32 | [-1, 64] |" in card
    assert "- passed: True" in card
    ref = pd.read_parquet(client.download_artifacts(result.run_id, "reference.parquet", str(root)))
    assert ref.shape == (300, 64)

    import mlflow.pyfunc

    store.use_fluent(settings)
    loaded = mlflow.pyfunc.load_model(result.model_uri)
    out = loaded.predict(np.random.default_rng(1).random((4, 64)).astype(np.float32))
    assert np.asarray(out["output"] if isinstance(out, dict) else out).shape == (4, 10)


def test_not_a_model(project: Path) -> None:
    with pytest.raises(PackagingError) as err:
        package({"weights": [1, 2]}, np.zeros((2, 3)), name="x")
    assert (
        "package() takes a torch.nn.Module or a scikit-learn, XGBoost or LightGBM estimator, "
        "got builtins.dict" in str(err.value)
    )


def test_scikit_learn_estimator_through_skl2onnx(project: Path) -> None:
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    X, y = load_digits(return_X_y=True)
    model = LogisticRegression(max_iter=500).fit(X / 16.0, y)
    result = package(model, X[:20] / 16.0, name="digits-lr", reference=X[:200] / 16.0)
    assert result.parity["passed"] and result.parity["max_abs_diff"] < 1e-4
    assert result.signature["inputs"] == [{"name": "input", "dtype": "float32", "shape": [-1, 64]}]
    assert [o["name"] for o in result.signature["outputs"]] == ["label", "probabilities"]
    with pytest.raises(PackagingError, match=r"does not accept the example of shape \(2, 5\)"):
        package(model, np.zeros((2, 5)), name="digits-lr")
    with pytest.raises(ParityError, match="ONNX Runtime and scikit-learn disagree"):
        package(model, X[:20] / 16.0, name="strict-lr", tolerance=0.0)
    assert [r.data.tags["mlops.model_name"] for r in runs_of_kind(project, "package")] == [
        "digits-lr"
    ]


def test_example_of_the_wrong_shape(project: Path) -> None:
    with pytest.raises(PackagingError) as err:
        package(mlp(), torch.rand(4, 10), name="x")
    assert "does not accept the example of shape (4, 10)" in str(err.value)
    assert "mat1 and mat2 shapes cannot be multiplied" in str(err.value)
    with pytest.raises(PackagingError, match="need a batch dimension"):
        package(mlp(), torch.tensor(1.0), name="x")
    with pytest.raises(PackagingError, match="not a tensor or an array"):
        package(mlp(), "text", name="x")
    assert runs_of_kind(project, "package") == []


class _Eig(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.linalg.eig(x)[0].real


def test_operator_the_exporter_cannot_handle(project: Path) -> None:
    with pytest.raises(ExportError) as err:
        package(_Eig(), torch.rand(2, 3, 3), name="eig")
    assert err.value.op == "aten.linalg_eig"
    assert "the operator aten.linalg_eig has no ONNX translation" in str(err.value)
    assert runs_of_kind(project, "package") == []


def test_parity_beyond_tolerance_logs_nothing(project: Path) -> None:
    with pytest.raises(ParityError) as err:
        package(mlp(), torch.rand(8, 64) * 100, name="strict", tolerance=0.0)
    message = str(err.value)
    assert "max absolute difference" in message and "> tolerance 0" in message
    assert err.value.max_abs > 0
    assert runs_of_kind(project, "package") == []


def test_package_from_a_notebook_keeps_its_lineage(project: Path) -> None:
    path = write_notebook(
        project / "train.ipynb",
        [
            "%load_ext jupyter_mlops",
            "import pandas as pd\nimport torch\nfrom torch import nn\n"
            "features = pd.DataFrame(torch.rand(50, 8).numpy())",
            "hidden = 4\nmodel = nn.Sequential(nn.Linear(8, hidden), nn.ReLU(), nn.Linear(hidden, 2))\n"
            "example = torch.rand(5, 8)\nval_accuracy = 0.91",
            "%mlops package model --example example --name tiny --reference features",
            "%mlops register",
            "%mlops package nope --example example",
            "%mlops models",
        ],
    )
    nb = execute_notebook(path, timeout=300)
    assert "packaged tiny: models:/" in cell_text(nb.cells[3]), cell_text(nb.cells[3])
    assert "registered tiny version 1" in cell_text(nb.cells[4])
    assert "no variable 'nope' in this notebook (the model)" in cell_text(nb.cells[5])
    assert "tiny" in cell_text(nb.cells[6]) and "passed" in cell_text(nb.cells[6])
    drain(project)
    [session] = runs_of_kind(project, "session")
    [pkg] = runs_of_kind(project, "package")
    assert pkg.data.tags["mlflow.parentRunId"] == session.info.run_id
    assert pkg.data.params["hidden"] == "4"
    assert pkg.data.metrics["val_accuracy"] == 0.91
    cells = {c.data.tags["mlops.record_id"]: c for c in runs_of_kind(project, "cell")}
    packaging_cell = cells[pkg.data.tags["mlops.cell_record_id"]]
    assert packaging_cell.data.tags["mlops.source"].startswith("%mlops package model")
    card = json.loads(pkg.data.tags["mlops.parity"])
    assert card["passed"] is True
