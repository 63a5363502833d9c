"""The Open Inference Protocol as the official ``tritonclient[http]`` speaks it, against a
real model server process: health, metadata, readiness, binary and JSON inference, errors."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlparse

import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from jupyter_mlops.config import Settings
from jupyter_mlops.serving import manager
from tests.serving.conftest import WEIGHTS, classifier_onnx

pytestmark = pytest.mark.slow

X = np.array([[1, 2, 3, 4], [0.5, -1, 2, 0]], dtype=np.float32)


@pytest.fixture(scope="module")
def servers(registry: Settings) -> Iterator[dict[str, manager.Deployment]]:
    lin = manager.deploy("lin/1", name="oip-lin", capture=False, settings=registry)
    try:
        clf = manager.deploy("clf/1", name="oip-clf", capture=False, settings=registry)
    except BaseException:
        manager.undeploy(lin.id, settings=registry)
        raise
    try:
        yield {"lin": lin, "clf": clf}
    finally:
        manager.undeploy(lin.id, settings=registry)
        manager.undeploy(clf.id, settings=registry)


def _client(d: manager.Deployment) -> httpclient.InferenceServerClient:
    return httpclient.InferenceServerClient(urlparse(d.url).netloc)


def _input(array: np.ndarray, binary: bool = True, datatype: str = "FP32") -> object:
    inp = httpclient.InferInput("input", list(array.shape), datatype)
    inp.set_data_from_numpy(array, binary_data=binary)
    return inp


def test_server_is_live_ready_and_describes_itself(servers: dict[str, manager.Deployment]) -> None:
    client = _client(servers["lin"])
    assert client.is_server_live()
    assert client.is_server_ready()
    meta = client.get_server_metadata()
    assert meta["name"] == "jupyter-mlops"
    assert "binary_tensor_data" in meta["extensions"]


def test_model_ready_with_and_without_a_version(servers: dict[str, manager.Deployment]) -> None:
    client = _client(servers["lin"])
    assert client.is_model_ready("lin")
    assert client.is_model_ready("lin", model_version="1")
    assert not client.is_model_ready("lin", model_version="9")
    assert not client.is_model_ready("other")


def test_model_metadata_declares_each_output_type(servers: dict[str, manager.Deployment]) -> None:
    lin = _client(servers["lin"]).get_model_metadata("lin", model_version="1")
    assert lin == {
        "name": "lin",
        "versions": ["1"],
        "platform": "onnxruntime_onnx",
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}],
        "outputs": [{"name": "output", "datatype": "FP32", "shape": [-1, 3]}],
    }
    clf = _client(servers["clf"]).get_model_metadata("clf")
    assert clf["outputs"] == [
        {"name": "label", "datatype": "INT64", "shape": [-1]},
        {"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]},
    ]


def test_infer_with_binary_data_by_default(servers: dict[str, manager.Deployment]) -> None:
    result = _client(servers["lin"]).infer("lin", [_input(X)], request_id="req-7")
    np.testing.assert_allclose(result.as_numpy("output"), X @ WEIGHTS["1"], rtol=1e-6)
    response = result.get_response()
    assert response["id"] == "req-7"
    assert (response["model_name"], response["model_version"]) == ("lin", "1")
    [out] = response["outputs"]
    assert out["parameters"]["binary_data_size"] == 2 * 3 * 4


def test_infer_with_json_data_and_a_version(servers: dict[str, manager.Deployment]) -> None:
    outputs = [httpclient.InferRequestedOutput("output", binary_data=False)]
    result = _client(servers["lin"]).infer(
        "lin", [_input(X, binary=False)], model_version="1", outputs=outputs,
        parameters={"note": "custom parameters are accepted"},
    )  # fmt: skip
    [out] = result.get_response()["outputs"]
    assert "parameters" not in out and len(out["data"]) == 6
    np.testing.assert_allclose(result.as_numpy("output"), X @ WEIGHTS["1"], rtol=1e-6)


def test_classifier_label_is_int64_and_outputs_are_honoured(
    servers: dict[str, manager.Deployment],
) -> None:
    session = ort.InferenceSession(classifier_onnx().SerializeToString())
    label, probabilities = session.run(None, {"input": X})
    client = _client(servers["clf"])
    result = client.infer("clf", [_input(X)])
    assert result.as_numpy("label").dtype == np.int64
    np.testing.assert_array_equal(result.as_numpy("label"), label)
    np.testing.assert_allclose(result.as_numpy("probabilities"), probabilities, rtol=1e-6)
    only = client.infer("clf", [_input(X)], outputs=[httpclient.InferRequestedOutput("label")])
    assert [o["name"] for o in only.get_response()["outputs"]] == ["label"]
    assert only.get_output("label")["datatype"] == "INT64"
    assert only.as_numpy("probabilities") is None


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: {"inputs": [_input(X.astype(np.int64), datatype="INT64")]},
            "inference input 'input' data-type is 'INT64', but the model expects 'FP32'",
        ),
        (
            lambda: {"inputs": [_input(X[:, :2])]},
            "input 'input': shape [2, 2] does not match ['batch', 4]",
        ),
        (
            lambda: {
                "inputs": [_input(X)],
                "outputs": [httpclient.InferRequestedOutput("nope")],
            },
            "unexpected inference output 'nope' for model 'clf'",
        ),
    ],
)
def test_errors_reach_the_client_with_our_message(
    servers: dict[str, manager.Deployment], make: object, message: str
) -> None:
    with pytest.raises(InferenceServerException) as caught:
        _client(servers["clf"]).infer("clf", **make())  # type: ignore[operator]
    assert message in caught.value.message()
    assert caught.value.status() == "400"


def test_unknown_model_and_version_are_404_with_a_message(
    servers: dict[str, manager.Deployment],
) -> None:
    client = _client(servers["lin"])
    with pytest.raises(InferenceServerException, match="no model 'other' here") as caught:
        client.infer("other", [_input(X)])
    assert caught.value.status() == "404"
    with pytest.raises(InferenceServerException, match="model 'lin' has no version '9'"):
        client.get_model_metadata("lin", model_version="9")
