"""scikit-learn classifiers converted by skl2onnx with its ZipMap (probabilities as one map per
row), registered and deployed as any ONNX model: MLflow's protocol answers what ``mlflow models
serve`` answers, the Open Inference Protocol an FP32 tensor with the class labels, and the
capture keeps them."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import onnx
import pandas as pd
import pytest
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from jupyter_mlops import store
from jupyter_mlops.config import Settings
from jupyter_mlops.packaging.requirements import served_requirements
from jupyter_mlops.registry.service import register
from jupyter_mlops.serving import manager
from jupyter_mlops.serving.capture_store import stream_batches
from jupyter_mlops.serving.model import RequestError, ServedVersion
from jupyter_mlops.serving.zipmap import has_maps, unzip
from tests.conftest import captured_rows, wait_until
from tests.serving.conftest import linear_onnx, stop_server
from tests.serving.test_mlflow_parity import _mlflow_serve, _send
from tests.serving.test_request_ids import send

pytestmark = pytest.mark.slow

NAMES = np.array(["setosa", "versicolor", "virginica"])


def _iris() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_iris

    features, target = load_iris(return_X_y=True)
    return features.astype(np.float32), target


FEATURES, TARGET = _iris()
#: one of each class and a borderline flower
X = FEATURES[[0, 60, 120, 70]]


def _convert(model: Any) -> Any:
    """skl2onnx's defaults: ZipMap on, so probabilities are a sequence of maps."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    return convert_sklearn(model, initial_types=[("input", FloatTensorType([None, 4]))])


@pytest.fixture(scope="module")
def classifiers(registry: Settings) -> dict[str, Any]:
    """``iris`` (classes 0, 1, 2) and ``iris-names`` (classes by name), registered."""
    import mlflow
    import mlflow.onnx
    from sklearn.linear_model import LogisticRegression

    by_number = LogisticRegression(max_iter=1000).fit(FEATURES, TARGET)
    by_name = LogisticRegression(max_iter=1000).fit(FEATURES, NAMES[TARGET])
    experiment = store.get_or_create_experiment(registry, "models")
    for name, model in (("iris", by_number), ("iris-names", by_name)):
        proto = _convert(model)
        assert "ZipMap" in [n.op_type for n in proto.graph.node]
        store.use_fluent(registry)
        with mlflow.start_run(experiment_id=experiment):
            info = mlflow.onnx.log_model(
                onnx_model=proto,
                name="model",
                onnx_execution_providers=["CPUExecutionProvider"],
                pip_requirements=served_requirements(),
            )
        register(info.model_uri, name, settings=registry)
    return {"iris": by_number, "iris-names": by_name}


@pytest.fixture(scope="module")
def servers(
    registry: Settings, classifiers: dict[str, Any]
) -> Iterator[dict[str, manager.Deployment]]:
    started: dict[str, manager.Deployment] = {}
    try:
        for name in classifiers:
            started[name] = manager.deploy(f"{name}/1", name=name, settings=registry)
        yield started
    finally:
        for d in started.values():
            manager.undeploy(d.id, settings=registry)


# -- the model as the server loads it -----------------------------------------------------------
def test_unzip_replaces_output_zipmaps_and_keeps_their_labels(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    path = tmp_path / "iris.onnx"
    model = LogisticRegression(max_iter=1000).fit(FEATURES, NAMES[TARGET])
    onnx.save(_convert(model), path)
    raw, labels = unzip(path)
    assert labels == {"output_probability": list(NAMES)}
    served = onnx.load_from_string(raw)
    onnx.checker.check_model(served, full_check=True)
    assert "ZipMap" not in [n.op_type for n in served.graph.node]
    out = {o.name: o.type.tensor_type for o in served.graph.output}["output_probability"]
    assert out.elem_type == onnx.TensorProto.FLOAT
    assert [d.dim_value for d in out.shape.dim] == [0, 3]
    assert not has_maps(["tensor(float)", "tensor(int64)"])

    plain = tmp_path / "linear.onnx"
    onnx.save(linear_onnx(np.ones((4, 3), np.float32)), plain)
    assert unzip(plain)[1] == {}


def test_an_output_that_is_no_tensor_and_no_zipmap_is_a_501_that_says_so(tmp_path: Path) -> None:
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["input"], ["same"]),
         helper.make_node("SequenceConstruct", ["input"], ["listed"])],
        "listing",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("same", TensorProto.FLOAT, ["batch", 4]),
         helper.make_tensor_sequence_value_info("listed", TensorProto.FLOAT, None)],
    )  # fmt: skip
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]),
              tmp_path / "m.onnx")  # fmt: skip
    served = ServedVersion("1", tmp_path / "m.onnx")
    with pytest.raises(RequestError) as caught:
        served.predict({"input": X})
    assert caught.value.status == 501
    assert caught.value.message.startswith(
        "output 'listed' is a seq(tensor(float)), not a tensor: this server answers tensors"
    )
    np.testing.assert_array_equal(served.predict({"input": X}, ["same"])["same"], X)


# -- MLflow's scoring protocol ------------------------------------------------------------------
def _maps(probabilities: np.ndarray, classes: Any) -> list[dict[str, float]]:
    return [{str(c): float(p) for c, p in zip(classes, row, strict=True)} for row in probabilities]


def _close(got: list[dict[str, float]], want: list[dict[str, float]]) -> None:
    assert [list(g) for g in got] == [list(w) for w in want]
    np.testing.assert_allclose(
        [list(g.values()) for g in got], [list(w.values()) for w in want], rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("name", ["iris", "iris-names"])
def test_invocations_answer_one_map_of_probabilities_per_row(
    servers: dict[str, manager.Deployment], classifiers: dict[str, Any], name: str
) -> None:
    model = classifiers[name]
    want_maps = _maps(model.predict_proba(X), model.classes_)
    want_labels = model.predict(X).tolist()
    url = servers[name].url
    for body in ({"inputs": X.tolist()}, {"instances": X.tolist()}):
        status, _, answer = send(url, "/invocations", body)
        assert status == 200, answer
        predictions = answer["predictions"]
        assert predictions["output_label"] == want_labels
        _close(predictions["output_probability"], want_maps)
        # a table of numbers, one column per class
        table = pd.DataFrame(predictions["output_probability"])
        assert list(table.columns) == [str(c) for c in model.classes_]
    status, _, answer = send(url, "/invocations", {"dataframe_split": {"data": X.tolist()}})
    assert status == 200, answer
    assert [r["output_label"] for r in answer["predictions"]] == want_labels
    _close([r["output_probability"] for r in answer["predictions"]], want_maps)


@pytest.fixture(scope="module")
def mlflow_pair(
    registry: Settings, servers: dict[str, manager.Deployment]
) -> Iterator[dict[str, tuple[int, int]]]:
    """(MLflow's port, ours) for each classifier, on the same registered version."""
    import os

    env = dict(os.environ, MLFLOW_TRACKING_URI=registry.tracking_uri,
               MLFLOW_REGISTRY_URI=registry.registry_uri)  # fmt: skip
    started = []
    try:
        pairs = {}
        for name, d in servers.items():
            proc, port = _mlflow_serve(f"models:/{name}/1", env, registry.project_dir)
            started.append(proc)
            pairs[name] = (port, d.port)
        yield pairs
    finally:
        for proc in started:
            stop_server(proc)


def _csv() -> str:
    out = io.StringIO()
    pd.DataFrame(X, columns=["a", "b", "c", "d"]).to_csv(out, index=False)
    return out.getvalue()


@pytest.mark.parametrize("name", ["iris", "iris-names"])
@pytest.mark.parametrize(
    ("ctype", "body"),
    [
        ("application/json", {"inputs": X.tolist()}),
        ("application/json", {"instances": X[:1].tolist()}),
        ("application/json", {"dataframe_split": {"data": X.tolist()}}),
        ("application/json", {"dataframe_records": [dict(zip("abcd", r)) for r in X.tolist()]}),
        ("text/csv", _csv()),
    ],
    ids=["inputs", "instances", "dataframe_split", "dataframe_records", "csv"],
)
def test_the_same_answer_as_mlflow_models_serve(
    mlflow_pair: dict[str, tuple[int, int]], name: str, ctype: str, body: Any
) -> None:
    theirs_port, ours_port = mlflow_pair[name]
    theirs = _send(theirs_port, "POST", "/invocations", ctype, body)
    ours = _send(ours_port, "POST", "/invocations", ctype, body)
    assert theirs[0] == 200, theirs
    assert (ours[0], json.loads(ours[2])) == (theirs[0], json.loads(theirs[2]))


# -- the Open Inference Protocol ----------------------------------------------------------------
def _client(d: manager.Deployment) -> httpclient.InferenceServerClient:
    return httpclient.InferenceServerClient(urlparse(d.url).netloc)


def _input(binary: bool = True) -> Any:
    tensor = httpclient.InferInput("input", list(X.shape), "FP32")
    tensor.set_data_from_numpy(X, binary_data=binary)
    return tensor


@pytest.mark.parametrize(
    ("name", "label_type", "labels"),
    [("iris", "INT64", [0, 1, 2]), ("iris-names", "BYTES", list(NAMES))],
)
def test_metadata_declares_an_fp32_table_with_its_class_labels(
    servers: dict[str, manager.Deployment], name: str, label_type: str, labels: list[Any]
) -> None:
    meta = _client(servers[name]).get_model_metadata(name)
    assert meta["outputs"] == [
        {"name": "output_label", "datatype": label_type, "shape": [-1]},
        {"name": "output_probability", "datatype": "FP32", "shape": [-1, 3],
         "parameters": {"class_labels": json.dumps(labels, separators=(",", ":"))}},
    ]  # fmt: skip


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
@pytest.mark.parametrize("name", ["iris", "iris-names"])
def test_tritonclient_gets_probabilities_as_a_tensor(
    servers: dict[str, manager.Deployment], classifiers: dict[str, Any], name: str, binary: bool
) -> None:
    model = classifiers[name]
    outputs = [httpclient.InferRequestedOutput(n, binary_data=binary)
               for n in ("output_label", "output_probability")]  # fmt: skip
    result = _client(servers[name]).infer(
        name, [_input(binary)], outputs=outputs, request_id="iris-1"
    )
    probabilities = result.as_numpy("output_probability")
    assert probabilities.dtype == np.float32 and probabilities.shape == (len(X), 3)
    np.testing.assert_allclose(probabilities, model.predict_proba(X), rtol=1e-5, atol=1e-6)
    labels = result.as_numpy("output_label")
    want = model.predict(X)
    if name == "iris":
        np.testing.assert_array_equal(labels, want)
    else:
        assert [v.decode() if isinstance(v, bytes) else v for v in labels] == want.tolist()
    described = result.get_output("output_probability")
    classes = json.loads(described["parameters"]["class_labels"])
    assert classes == model.classes_.tolist()
    assert [
        classes[i] for i in probabilities.argmax(axis=1)
    ] == want.tolist()  # the labels name the columns
    assert ("binary_data_size" in described["parameters"]) is binary
    assert result.get_response()["id"] == "iris-1"


def test_only_the_probabilities_and_a_bad_request_still_a_400(
    servers: dict[str, manager.Deployment],
) -> None:
    client = _client(servers["iris"])
    only = client.infer(
        "iris", [_input()], outputs=[httpclient.InferRequestedOutput("output_probability")]
    )
    assert [o["name"] for o in only.get_response()["outputs"]] == ["output_probability"]
    assert only.as_numpy("output_probability").shape == (len(X), 3)
    wrong = httpclient.InferInput("input", [1, 3], "FP32")
    wrong.set_data_from_numpy(X[:1, :3])
    with pytest.raises(InferenceServerException, match=r"shape \[1, 3\] does not match") as caught:
        client.infer("iris", [wrong])
    assert caught.value.status() == "400"


# -- capture ------------------------------------------------------------------------------------
def test_capture_keeps_the_label_and_the_probability_table(
    servers: dict[str, manager.Deployment], classifiers: dict[str, Any], registry: Settings
) -> None:
    d = servers["iris"]
    status, headers, _ = send(d.url, "/invocations", {"inputs": X.tolist()},
                              {"X-Request-ID": "flowers"})  # fmt: skip
    assert (status, headers["x-request-id"]) == (200, "flowers")

    def flowers() -> Any:
        log = captured_rows(d.id, registry, 1)
        rows = None if log is None else log[log["request_id"].str.startswith("flowers", na=False)]
        return rows if rows is not None and len(rows) == len(X) else None

    mine = wait_until(flowers, "the captured rows of request 'flowers'")
    assert mine["request_id"].tolist() == [f"flowers-{i}" for i in range(len(X))]
    np.testing.assert_allclose(mine[["f0", "f1", "f2", "f3"]].to_numpy(), X)
    assert mine["out0"].tolist() == classifiers["iris"].predict(X).tolist()
    directory = registry.state_dir / "inference" / d.id
    types = {
        str(b.schema.field("out.output_probability").type)
        for path in directory.glob("capture-*.arrows")
        for b in stream_batches(path)
    }
    assert types == {"list<item: fixed_size_list<item: float>[3]>"}
