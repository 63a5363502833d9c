"""Real model server processes on 127.0.0.1: protocols, bad requests, traffic, capture."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import sys
import threading
import time
from typing import Any
from urllib.parse import urlparse

import numpy as np
import onnxruntime as ort
import pytest

from jupyter_mlops.config import Settings
from jupyter_mlops.exceptions import NotFoundError
from jupyter_mlops.registry.service import promote
from jupyter_mlops.serving import manager
from tests.conftest import WAIT_S, wait_for_capture, wait_until
from tests.serving.conftest import (
    WEIGHTS,
    expected,
    free_port,
    linear_onnx,
    start_server,
    stop_server,
)

pytestmark = pytest.mark.slow

X = np.array([[1, 2, 3, 4], [0.5, -1, 2, 0]], dtype=np.float32)


class Client:
    """A keep-alive HTTP client, like a real load balancer's."""

    def __init__(self, url: str):
        parsed = urlparse(url)
        self.conn = http.client.HTTPConnection(str(parsed.hostname), parsed.port, timeout=10)

    def call(self, method: str, path: str, body: Any = None, raw: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:  # fmt: skip
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        self.conn.request(
            method, path, body=data, headers={"Content-Type": "application/json", **(headers or {})}
        )
        response = self.conn.getresponse()
        payload = response.read()
        try:
            parsed = json.loads(payload)
        except ValueError:
            parsed = payload.decode()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, parsed


def _deploy(settings: Settings, spec: str, **kw: Any) -> manager.Deployment:
    return manager.deploy(spec, settings=settings, **kw)


def test_both_protocols_answer_what_onnxruntime_answers(registry: Settings) -> None:
    d = _deploy(registry, "lin@champion", name="protocols")
    try:
        session = ort.InferenceSession(linear_onnx(WEIGHTS["1"]).SerializeToString())
        want = session.run(None, {"input": X})[0]
        client = Client(d.url)
        columns = ["a", "b", "c", "d"]
        tensors = [
            {"inputs": X.tolist()},
            {"instances": X.tolist()},
            {"inputs": {"input": X.tolist()}},
        ]
        tables = [
            {"dataframe_split": {"columns": columns, "data": X.tolist()}},
            {"dataframe_records": [dict(zip(columns, row)) for row in X.tolist()]},
        ]
        for body in tensors + tables:
            status, headers, answer = client.call("POST", "/invocations", body)
            assert status == 200, answer
            assert headers["x-model-version"] == "1"
            if body in tensors:
                np.testing.assert_allclose(answer["predictions"]["output"], want, rtol=1e-6)
            else:  # MLflow's ONNX flavour: a table in, one record per output element out
                got = [row["output"] for row in answer["predictions"]]
                np.testing.assert_allclose(got, want.ravel(), rtol=1e-6)
        v2 = {
            "inputs": [
                {"name": "input", "shape": [2, 4], "datatype": "FP32", "data": X.ravel().tolist()}
            ]
        }
        status, headers, answer = client.call("POST", "/v2/models/lin/infer", v2)
        assert status == 200, answer
        assert (answer["model_name"], answer["model_version"]) == ("lin", "1")
        [out] = answer["outputs"]
        assert (out["name"], out["shape"], out["datatype"]) == ("output", [2, 3], "FP32")
        np.testing.assert_allclose(np.reshape(out["data"], (2, 3)), want, rtol=1e-6)
        assert client.call("GET", "/v2/models/lin")[2] == {
            "name": "lin",
            "versions": ["1"],
            "platform": "onnxruntime_onnx",
            "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}],
            "outputs": [{"name": "output", "datatype": "FP32", "shape": [-1, 3]}],
        }
        assert client.call("GET", "/v2/health/live")[0] == 200
        assert client.call("GET", "/v2/health/ready")[2] == {"ready": True}
        assert client.call("GET", "/ping")[0] == 200
        assert client.call("GET", "/v2")[2]["extensions"] == ["binary_tensor_data"]
        metrics = client.call("GET", "/metrics")[2]
        assert 'mlops_requests_total{protocol="mlflow",version="1"} 5.0' in metrics
        assert 'mlops_requests_total{protocol="v2",version="1"} 1.0' in metrics
    finally:
        manager.undeploy(d.id, settings=registry)


_INFER = "/v2/models/lin/infer"


def _v2(**item: object) -> bytes:
    tensor = {"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}
    return json.dumps({"inputs": [{**tensor, **item}]}).encode()


@pytest.mark.parametrize(
    ("method", "path", "raw", "headers", "status", "message"),
    [
        ("POST", "/invocations", b"{not json", {}, 400,
         "Invalid input. Ensure that input is a valid JSON formatted string."),
        ("POST", "/invocations", b'{"inputs": [[1.0, 2.0]]}', {}, 400,
         "input 'input': shape [1, 2] does not match ['batch', 4]"),
        # no batch axis: MLflow refuses it too
        ("POST", "/invocations", b'{"inputs": [1.0, 2.0, 3.0, 4.0]}', {}, 400,
         "input 'input': shape [4] does not match ['batch', 4]"),
        ("POST", "/invocations", b'{"inputs": [[1, 2, 3, 4]]}', {}, 400,
         "input 'input' takes float32 and the data are integers (write 1.0, not 1)"),
        ("POST", "/invocations", b'{"inputs": [["a", "b", "c", "d"]]}', {}, 400,
         "input 'input': expected numbers"),
        ("POST", "/invocations", b'{"inputs": [[1, 2, 3], [4]]}', {}, 400,
         "Invalid input. setting an array element with a sequence."),
        ("POST", "/invocations", b'{"inputs": {"x": [[1.0, 2.0, 3.0, 4.0]]}}', {}, 400,
         "The model's inputs are ['input'], got ['x']."),
        ("POST", "/invocations", b'{"rows": []}', {}, 400, "exactly one of the input fields"),
        ("POST", "/invocations", b"[" * 100_000, {}, 400,
         "Invalid input. the body is nested too deeply to be a tensor"),
        ("POST", "/invocations", b'{"inputs": [[1e999, 1.0, 2.0, 3.0]]}', {}, 200, ""),
        ("POST", "/invocations", b"a,b", {"Content-Type": "text/plain"}, 415,
         "This predictor only supports the following content types: Types: "
         "['text/csv', 'application/json', 'application/vnd.apache.parquet']. Got 'text/plain'."),
        ("POST", "/invocations", b"{}", {"Content-Type": "application/json; charset=latin-1"},
         415, "The scoring server only supports UTF-8"),
        ("POST", "/invocations", b"{}", {"Content-Type": "application/json; format=split"},
         415, "Unrecognized content type parameters: format."),
        ("POST", "/invocations", b"[" + b"1," * 6_000_000 + b"1]", {}, 413, "over the limit"),
        ("POST", "/v2/models/other/infer", b'{"inputs": []}', {}, 404, "no model 'other' here"),
        ("POST", _INFER, b'{"inputs": [{"name": "input"}]}', {}, 400,
         "inference input 'input' data-type is None, but the model expects 'FP32'"),
        ("POST", _INFER, _v2(shape=[2, 4]), {}, 400,
         "input 'input': 4 values in 'data' for shape [2, 4] (8)"),
        ("POST", _INFER, _v2(datatype="INT64"), {}, 400,
         "inference input 'input' data-type is 'INT64', but the model expects 'FP32'"),
        ("POST", _INFER, _v2(data=[1, 2, 3, "4"]), {}, 400,
         "input 'input': FP32 data must be numbers"),
        ("POST", _INFER, _v2(name="x"), {}, 400,
         "unexpected inference input 'x' for model 'lin'; its inputs are ['input']"),
        ("POST", _INFER, b'{"inputs": []}', {}, 400,
         "expected 1 inputs but got 0 inputs for model 'lin': missing ['input']"),
        ("POST", _INFER, _v2(parameters={"binary_data_size": 16}), {}, 400,
         "input 'input' has binary_data_size but the request has no "
         "Inference-Header-Content-Length header"),
        ("POST", _INFER, _v2(), {"Inference-Header-Content-Length": "9999"}, 400,
         "Inference-Header-Content-Length '9999' is not a length within the body's"),
        ("POST", _INFER, _v2(), {"Content-Encoding": "gzip"}, 415,
         "Content-Encoding 'gzip' is not supported"),
        ("GET", "/v2/models/lin/versions/7", None, {}, 404,
         "model 'lin' has no version '7' served here (served: ['1'])"),
        ("GET", "/v2/nowhere", None, {}, 404, "GET /v2/nowhere: Not Found"),
        ("GET", "/invocations", None, {}, 405, "Method Not Allowed"),
        ("GET", "/nowhere", None, {}, 404, "Not Found"),
    ],
)  # fmt: skip
def test_bad_requests_get_a_4xx_with_a_message(
    registry: Settings,
    method: str,
    path: str,
    raw: bytes | None,
    headers: dict[str, str],
    status: int,
    message: str,
) -> None:
    d = _bad_server(registry)
    got, _, answer = Client(d.url).call(method, path, raw=raw, headers=headers)
    assert got == status, answer
    assert message in _message(answer)


def _message(answer: Any) -> str:
    """The text a client reads: MLflow's ``message``, the protocol's ``error``, FastAPI's
    ``detail`` (unknown paths, as MLflow's server answers them) or a plain-text body."""
    if isinstance(answer, dict):
        for key in ("message", "error", "detail"):
            if key in answer:
                return str(answer[key])
    return str(answer)


def test_a_packaged_model_takes_what_mlflow_takes_for_its_signature(registry: Settings) -> None:
    """A model logged with one unnamed tensor (as ``package()`` logs it): integers are cast
    to it, a table becomes it, and naming it is refused, as ``mlflow models serve`` does."""
    d = _deploy(registry, "signed/1", name="signed", capture=False)
    try:
        client = Client(d.url)
        want = expected("1", X).tolist()
        status, _, answer = client.call("POST", "/invocations", {"inputs": [[1, 2, 3, 4]]})
        assert (status, answer) == (200, {"predictions": {"output": [[6.0, 7.0, 8.0]]}})
        status, _, answer = client.call(
            "POST", "/invocations", {"dataframe_split": {"data": X.tolist()}}
        )
        assert status == 200
        np.testing.assert_allclose(answer["predictions"]["output"], want, rtol=1e-6)
        status, _, answer = client.call("POST", "/invocations", {"inputs": {"input": X.tolist()}})
        assert status == 400
        assert answer["message"] == (
            "Invalid input. Failed to parse input data. This model contains an un-named  model "
            "signature which expects a single n-dimensional array or a single value as input, "
            "however, an input of type <class 'dict'> was found."
        )
    finally:
        manager.undeploy(d.id, settings=registry)


_BAD: dict[str, manager.Deployment] = {}


def _bad_server(settings: Settings) -> manager.Deployment:
    if "d" not in _BAD or not manager._alive(_BAD["d"].pid):
        _BAD["d"] = _deploy(settings, "lin/1", name="bad-requests", capture=False)
    return _BAD["d"]


def test_canary_split_then_reweight(registry: Settings) -> None:
    d = _deploy(registry, "lin@champion", canary="lin@challenger", canary_weight=0.2, name="canary")
    try:
        assert d.weights == {"1": 0.8, "2": 0.2}
        client = Client(d.url)
        seen = [
            client.call("POST", "/invocations", {"inputs": X.tolist()})[1]["x-model-version"]
            for _ in range(1000)
        ]
        share = seen.count("2") / len(seen)
        assert 0.15 < share < 0.25, share
        updated = manager.set_traffic(d.id, {"1": 1, "2": 3}, settings=registry)
        assert updated.weights == {"1": 0.25, "2": 0.75}
        seen = [
            client.call("POST", "/invocations", {"inputs": X.tolist()})[1]["x-model-version"]
            for _ in range(400)
        ]
        assert 0.65 < seen.count("2") / len(seen) < 0.85
        with pytest.raises(
            manager.DeploymentError, match="at least one version needs a weight above 0"
        ):
            manager.set_traffic(d.id, {"1": 0}, settings=registry)
        with pytest.raises(manager.DeploymentError, match="is negative"):
            manager.set_traffic(d.id, {"1": -1, "2": 1}, settings=registry)
        with pytest.raises(NotFoundError, match="model 'lin' has no version 9"):
            manager.set_traffic(d.id, {"9": 1}, settings=registry)
    finally:
        manager.undeploy(d.id, settings=registry)


def test_switch_under_load_fails_no_request_and_capture_is_complete(registry: Settings) -> None:
    d = _deploy(registry, "lin@champion", name="bluegreen")
    stop = threading.Event()
    results: list[tuple[int, str]] = []
    lock = threading.Lock()

    def load() -> None:
        client = Client(d.url)
        while not stop.is_set():
            status, headers, answer = client.call(
                "POST", "/invocations", {"inputs": X[:1].tolist()}
            )
            version = headers.get("x-model-version", "")
            if status == 200:
                # the answer must be the one of the version that says it answered
                np.testing.assert_allclose(
                    answer["predictions"]["output"], expected(version, X[:1]), rtol=1e-6
                )
            with lock:
                results.append((status, version))

    def answered(count: int, version: str, what: str) -> None:
        """Until ``count`` more requests were answered by ``version`` (or the load failed)."""
        with lock:
            start = len(results)

        def enough() -> bool:
            if not all(t.is_alive() for t in threads):
                raise AssertionError("a load thread stopped early")
            with lock:
                return sum(v == version for _, v in results[start:]) >= count

        wait_until(enough, what)

    threads = [threading.Thread(target=load) for _ in range(4)]
    try:
        try:
            for t in threads:
                t.start()
            answered(40, "1", "load on v1")
            manager.switch(d.id, "lin@challenger", settings=registry)
            answered(40, "2", "load on v2 after the first switch")
            manager.switch(d.id, "1", settings=registry)
            answered(40, "1", "load on v1 after the switch back")
        finally:
            stop.set()
            for t in threads:
                if t.ident is not None:
                    t.join(WAIT_S)
        assert not any(t.is_alive() for t in threads), "a load thread did not stop"
        statuses = [s for s, _ in results]
        assert len(statuses) > 100
        assert set(statuses) == {200}, "a request failed during the switch"
        versions = [v for _, v in results]
        assert "2" in versions and versions[-1] == "1"
        log = wait_for_capture(d.id, registry, len(results))
        assert len(log) == len(results)
        assert set(log["version"]) == {"1", "2"}
        assert list(log.columns[:8]) == [
            "time",
            "version",
            "protocol",
            "latency_ms",
            "f0",
            "f1",
            "f2",
            "f3",
        ]
        assert log[["f0", "f1", "f2", "f3"]].iloc[0].tolist() == [1.0, 2.0, 3.0, 4.0]
        later = manager.inference_log(d.id, since=time.time() + 60, settings=registry)
        assert later.empty
    finally:
        manager.undeploy(d.id, settings=registry)


def test_follow_alias_moves_the_deployment(registry: Settings) -> None:
    d = _deploy(registry, "lin@challenger", name="follower", follow=True, follow_interval=0.3)
    try:
        assert d.weights == {"2": 1.0}
        promote("lin", 1, "challenger", reason="test follow", settings=registry)
        deadline = time.monotonic() + 30
        while manager.get_deployment(d.id, settings=registry).weights != {"1": 1.0}:
            assert time.monotonic() < deadline, "the deployment did not follow the alias"
            time.sleep(0.2)
        status, headers, _ = Client(d.url).call("POST", "/invocations", {"inputs": X.tolist()})
        assert (status, headers["x-model-version"]) == (200, "1")
    finally:
        promote("lin", 2, "challenger", reason="restore", settings=registry)
        manager.undeploy(d.id, settings=registry)


def test_lifecycle_busy_port_dead_process_and_bad_specs(registry: Settings) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(manager.DeploymentError, match=f"port {port} on 127.0.0.1 is busy"):
            _deploy(registry, "lin@champion", port=port)
    with pytest.raises(NotFoundError, match="no registered model 'nope'"):
        _deploy(registry, "nope@champion")
    with pytest.raises(NotFoundError, match="model 'lin' has no alias 'prod'"):
        _deploy(registry, "lin@prod")
    with pytest.raises(manager.DeploymentError, match="write it as name@alias or name/version"):
        _deploy(registry, "lin@@x")
    with pytest.raises(manager.DeploymentError, match="canary weight must be between 0 and 1"):
        _deploy(registry, "lin@champion", canary="lin/2", canary_weight=1.5)
    d = _deploy(registry, "lin/1", name="doomed")
    os.kill(d.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while manager.get_deployment(d.id, settings=registry).status != "dead":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    with pytest.raises(manager.DeploymentError, match="deployment 'doomed' is dead"):
        manager.set_traffic(d.id, {"1": 1}, settings=registry)
    stopped = manager.undeploy(d.id, settings=registry)
    assert stopped.status == "stopped"
    live = _deploy(registry, "lin/1", name="clean")
    manager.undeploy(live.id, settings=registry)
    assert not manager._alive(live.pid)
    with pytest.raises(NotFoundError, match="no deployment 'ghost'"):
        manager.undeploy("ghost", settings=registry)
    with pytest.raises(NotFoundError, match="has no captured traffic"):
        manager.inference_log("clean", settings=registry)


def test_non_loopback_host_requires_a_token(registry: Settings) -> None:
    d = _deploy(registry, "lin/1", name="public", host="0.0.0.0")
    try:
        assert d.token
        client = Client(d.url)
        status, _, answer = client.call("POST", "/invocations", {"inputs": X.tolist()})
        assert (status, answer["error_code"]) == (401, "UNAUTHENTICATED")
        assert client.call("GET", "/ping")[0] == 200
        ok = client.call(
            "POST",
            "/invocations",
            {"inputs": X.tolist()},
            headers={"Authorization": f"Bearer {d.token}"},
        )
        assert ok[0] == 200
        assert "token" not in d.to_dict()
    finally:
        manager.undeploy(d.id, settings=registry)
        if "d" in _BAD:
            manager.undeploy(_BAD.pop("d").id, settings=registry)


# -- limits: size, time and connections ------------------------------------------------------
_LAUNCH = """
import sys
from pathlib import Path

import uvicorn

from jupyter_mlops.serving.app import create_app
from jupyter_mlops.serving.limits import uvicorn_options

config, port, header_timeout, connections = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
uvicorn.run(create_app(Path(config)), host="127.0.0.1", port=port,
            **uvicorn_options(header_timeout=header_timeout, max_connections=connections))
"""


@pytest.fixture(scope="module")
def limited(registry: Settings, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A server process on ``lin/1`` run with ``uvicorn_options()``: 1 MB bodies that must
    arrive in 2 s, headers in 6 s, at most 30 connections."""
    root = tmp_path_factory.mktemp("limited")
    d = _bad_server(registry)
    source = manager._root(registry) / d.id
    config = json.loads((source / "deployment.json").read_text())
    versions = {v: str(source / rel) for v, rel in config["versions"].items()}
    (root / "deployment.json").write_text(json.dumps({
        "model": "lin", "versions": versions, "weights": {"1": 1.0}, "generation": 1,
        "max_body_bytes": 1_000_000, "body_timeout_s": 2,
    }))  # fmt: skip
    port = free_port()
    command = [sys.executable, "-c", _LAUNCH, str(root / "deployment.json"), str(port), "6", "30"]
    proc = start_server(command, port, root / "server.log", env=dict(os.environ), cwd=root)
    try:
        yield port
    finally:
        stop_server(proc)


def _raw(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    return sock


def _answer(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    out = b""
    while chunk := sock.recv(65536):
        out += chunk
    return out


def test_a_chunked_body_over_the_limit_is_refused_before_it_ends(limited: int) -> None:
    sock = _raw(limited)
    try:
        sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")  # fmt: skip
        chunk = b"1" * 65536
        for _ in range(1_000_000 // len(chunk) + 1):  # just past the limit, and no last chunk
            sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        answer = _answer(sock)
    finally:
        sock.close()
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b"request body over the limit of 1000000 bytes" in answer


def test_a_declared_length_over_the_limit_is_refused_up_front(limited: int) -> None:
    sock = _raw(limited)
    try:
        sock.sendall(b"POST /v2/models/lin/infer HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Length: 400000000\r\n\r\n")  # fmt: skip
        answer = _answer(sock)
    finally:
        sock.close()
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b'{"error":"request body over the limit of 1000000 bytes"}' in answer


def test_a_body_that_stops_arriving_is_timed_out(limited: int) -> None:
    sock = _raw(limited)
    try:
        sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100\r\n\r\n{\"inputs\":")  # fmt: skip
        answer = _answer(sock)
    finally:
        sock.close()
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"the request body did not arrive within 2 s" in answer


def test_slow_headers_are_cut_off_and_connections_are_bounded(limited: int) -> None:
    """40 clients trickling a header line every 2 s, as a slowloris attack does."""
    socks = [_raw(limited) for _ in range(40)]
    try:
        for sock in socks:
            sock.sendall(b"GET /ping HTTP/1.1\r\n")
        # while they hold 40 of the 30 connections allowed, a complete request is refused
        deadline = time.monotonic() + 60
        while Client(f"http://127.0.0.1:{limited}").call("GET", "/ping")[0] != 503:
            assert time.monotonic() < deadline, "no 503 while the slow clients held the server"
            time.sleep(0.2)
        answers = []
        for sock in socks:
            try:
                while True:
                    sock.sendall(b"X-Slow: 1\r\n")
                    ready = sock.recv(65536)
                    if ready:
                        answers.append(ready + _answer(sock))
                        break
            except (BrokenPipeError, ConnectionResetError):
                answers.append(b"closed")
            except TimeoutError:
                answers.append(b"held open")
    finally:
        for sock in socks:
            sock.close()
    assert answers == [a for a in answers if a.startswith(b"HTTP/1.1 408 ") or a == b"closed"]
    assert answers.count(b"closed") < len(answers)
    status, _, _ = Client(f"http://127.0.0.1:{limited}").call("GET", "/ping")
    assert status == 200


def test_a_deployed_server_cuts_off_headers_that_never_end(registry: Settings) -> None:
    """The server process a deployment starts runs with the same bounds."""
    d = _deploy(registry, "lin/1", name="slow-headers", capture=False)
    try:
        sock = _raw(int(d.url.rsplit(":", 1)[1]))
        try:
            sock.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
            answer = _answer(sock)
        finally:
            sock.close()
    finally:
        manager.undeploy(d.id, settings=registry)
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert b"request headers took too long" in answer
