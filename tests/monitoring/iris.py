"""An iris classifier in ONNX (a scikit-learn logistic regression's weights in a graph), two
versions registered with a reference sample and their test accuracy, and a sender that
names its requests."""

from __future__ import annotations

import json
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from onnx import TensorProto, helper, numpy_helper

from jupyter_mlops import store
from jupyter_mlops.config import Settings
from jupyter_mlops.packaging.requirements import served_requirements
from jupyter_mlops.registry.service import register


def split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_iris
    from sklearn.model_selection import train_test_split

    x, y = load_iris(return_X_y=True)
    return train_test_split(  # type: ignore[no-any-return]
        x.astype(np.float32), y, test_size=0.4, random_state=0, stratify=y
    )


def classifier_onnx(coef: np.ndarray, intercept: np.ndarray) -> Any:
    """``probabilities`` first (the capture keeps a tensor model's first output), ``label``."""
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["input", "w"], ["z"]),
            helper.make_node("Add", ["z", "b"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
            helper.make_node("ArgMax", ["logits"], ["label"], axis=1, keepdims=0),
        ],
        "iris",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 4])],
        [
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 3]),
            helper.make_tensor_value_info("label", TensorProto.INT64, ["batch"]),
        ],
        initializer=[
            numpy_helper.from_array(coef.T.astype(np.float32), "w"),
            numpy_helper.from_array(intercept.astype(np.float32), "b"),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def register_iris(
    settings: Settings, c: float, *, metrics: dict[str, float] | None = None, name: str = "iris"
) -> float:
    """Train, log (with ``reference.parquet`` and ``test_accuracy``) and register a version;
    its test accuracy."""
    import mlflow
    import mlflow.onnx
    from sklearn.linear_model import LogisticRegression

    x_train, x_test, y_train, y_test = split()
    model = LogisticRegression(C=c, max_iter=500).fit(x_train, y_train)
    accuracy = float(model.score(x_test, y_test))
    experiment = store.get_or_create_experiment(settings, "models")
    with mlflow.start_run(experiment_id=experiment):
        info = mlflow.onnx.log_model(
            onnx_model=classifier_onnx(model.coef_, model.intercept_), name="model",
            onnx_execution_providers=["CPUExecutionProvider"], pip_requirements=served_requirements(),
        )  # fmt: skip
        mlflow.log_metrics({"test_accuracy": accuracy} if metrics is None else metrics)
        reference = pd.DataFrame(x_train, columns=["sl", "sw", "pl", "pw"])
        with tempfile.TemporaryDirectory() as tmp:
            reference.to_parquet(Path(tmp) / "reference.parquet")
            mlflow.log_artifact(str(Path(tmp) / "reference.parquet"))
    register(info.model_uri, name, settings=settings)
    return accuracy


def send_named(
    url: str, rows: np.ndarray, prefix: str, batch: int = 5, token: str | None = None
) -> list[str]:
    """Send ``rows`` in batches with ids ``<prefix><n>``; the per-row ids the capture keeps."""
    ids: list[str] = []
    for n, i in enumerate(range(0, len(rows), batch)):
        chunk = rows[i : i + batch]
        rid = f"{prefix}{n}"
        headers = {"Content-Type": "application/json", "X-Request-ID": rid}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        body = json.dumps({"inputs": chunk.tolist()}).encode()
        request = urllib.request.Request(f"{url}/invocations", data=body, headers=headers)
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200
            assert response.headers["x-request-id"] == rid
        ids.extend([rid] if len(chunk) == 1 else [f"{rid}-{j}" for j in range(len(chunk))])
    return ids


def post_feedback(url: str, body: Any, token: str | None = None) -> tuple[int, Any]:
    """(status, JSON body) of ``POST /feedback``."""
    import urllib.error

    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(f"{url}/feedback", data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")
