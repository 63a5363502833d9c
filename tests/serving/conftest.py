"""A project with a registered two-version linear model, served by real processes."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from jupyter_mlops import store
from jupyter_mlops.config import Settings, load_settings
from jupyter_mlops.packaging.requirements import served_requirements
from jupyter_mlops.registry.service import promote, register
from jupyter_mlops.serving import manager

WEIGHTS = {
    "1": np.arange(12, dtype=np.float32).reshape(4, 3) / 10,
    "2": -np.arange(12, dtype=np.float32).reshape(4, 3) / 10,
}


def linear_onnx(w: np.ndarray) -> Any:
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["input", "w"], ["output"])],
        "linear",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 3])],
        initializer=[numpy_helper.from_array(w, "w")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def classifier_onnx() -> Any:
    """A 3-class classifier: ``label`` (INT64, the arg max) and ``probabilities`` (FP32)."""
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["input", "w"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
            helper.make_node("ArgMax", ["logits"], ["label"], axis=1, keepdims=0),
        ],
        "classifier",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 4])],
        [
            helper.make_tensor_value_info("label", TensorProto.INT64, ["batch"]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 3]),
        ],
        initializer=[numpy_helper.from_array(WEIGHTS["1"], "w")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    import mlflow
    import mlflow.onnx

    root = tmp_path_factory.mktemp("serving")
    (root / "mlops.yaml").write_text("")
    saved = os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.environ.pop("MLFLOW_REGISTRY_URI", None)
    settings = load_settings(root)
    store.use_fluent(settings)
    experiment = store.get_or_create_experiment(settings, "models")
    for version in ("1", "2"):
        with mlflow.start_run(experiment_id=experiment):
            info = mlflow.onnx.log_model(
                onnx_model=linear_onnx(WEIGHTS[version]),
                name="model",
                onnx_execution_providers=["CPUExecutionProvider"],
                pip_requirements=served_requirements(),
            )
        register(info.model_uri, "lin", settings=settings)
    promote("lin", 1, "champion", settings=settings)
    promote("lin", 2, "challenger", settings=settings)
    with mlflow.start_run(experiment_id=experiment):
        info = mlflow.onnx.log_model(
            onnx_model=classifier_onnx(),
            name="model",
            onnx_execution_providers=["CPUExecutionProvider"],
            pip_requirements=served_requirements(),
        )
    register(info.model_uri, "clf", settings=settings)
    from mlflow.models import infer_signature

    example = np.ones((2, 4), dtype=np.float32)
    with mlflow.start_run(experiment_id=experiment):
        # as package() logs a model: with a signature of one unnamed tensor
        info = mlflow.onnx.log_model(
            onnx_model=linear_onnx(WEIGHTS["1"]),
            name="model",
            signature=infer_signature(example),
            input_example=example,
            onnx_execution_providers=["CPUExecutionProvider"],
            pip_requirements=served_requirements(),
        )
    register(info.model_uri, "signed", settings=settings)
    yield settings
    for d in manager.deployments(settings=settings):
        if d.status != "stopped":
            manager.undeploy(d.id, settings=settings)
    if saved is not None:
        os.environ["MLFLOW_TRACKING_URI"] = saved
    store.forget_clients()


def expected(version: str, x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float32) @ WEIGHTS[version]


@pytest.fixture
def project_dir(registry: Settings) -> Path:
    return registry.project_dir


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pings(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/ping")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def start_server(
    command: list[str], port: int, log: Path, env: dict[str, str], cwd: Path,
    timeout: float = 240.0,
) -> subprocess.Popen[bytes]:  # fmt: skip
    """A server process in its own session, returned once ``/ping`` answers 200."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, cwd=cwd,
                                start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + timeout
    try:
        while not _pings(port):
            if proc.poll() is not None:
                raise RuntimeError(f"{command[:3]} exited: {log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{command[:3]} not up in {timeout:g} s")
            time.sleep(0.2)
    except BaseException:
        stop_server(proc)
        raise
    return proc


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group, SIGKILL what is left."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
