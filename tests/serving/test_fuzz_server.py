"""Thousands of generated bodies, headers and paths at every route of a real model server:
no answer is a 5xx, and a valid request is answered the same before and after."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jupyter_mlops.config import Settings
from jupyter_mlops.serving import manager

pytestmark = pytest.mark.slow

FUZZ = settings(
    max_examples=400, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.function_scoped_fixture],
)  # fmt: skip
POSTS = ["/invocations", "/v2/models/lin/infer", "/v2/models/lin/versions/1/infer"]
GETS = ["/ping", "/health", "/version", "/v2", "/v2/health/live", "/v2/health/ready",
        "/v2/models/lin", "/v2/models/lin/ready", "/v2/models/lin/versions/1",
        "/v2/models/lin/versions/1/ready", "/metrics", "/mlops/status"]  # fmt: skip
VALID_V2 = {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32",
                        "data": [1.0, 2.0, 3.0, 4.0]}]}  # fmt: skip

_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats()
    | st.integers(min_value=2**63 - 2, max_value=2**70) | st.integers(max_value=-(2**63) + 2)
    | st.text(max_size=12) | st.sampled_from(["FP32", "INT64", "UINT8", "BYTES", "BOOL", "input"])
)  # fmt: skip
json_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=6)
    | st.dictionaries(st.text(max_size=8) | st.sampled_from(["name", "data", "shape"]), inner,
                      max_size=5),
    max_leaves=30,
)  # fmt: skip
# shapes of the protocols' own objects with wrong or extreme values inside
tensors = st.fixed_dictionaries(
    {},
    optional={
        "name": st.sampled_from(["input", "output", "x", ""]) | json_values,
        "shape": st.lists(st.integers(-2, 6) | st.just(2**40), max_size=4) | json_values,
        "datatype": st.sampled_from(["FP32", "FP64", "INT64", "UINT8", "BOOL", "BYTES", "fp32"])
        | json_values,
        "data": st.lists(st.floats() | st.integers() | st.booleans(), max_size=12)
        | st.lists(st.lists(st.floats(), min_size=4, max_size=4), max_size=3) | json_values,
        "parameters": st.fixed_dictionaries(
            {}, optional={"binary_data_size": st.integers(-5, 64) | json_values,
                          "binary_data": json_values}) | json_values,
    },
)  # fmt: skip
protocol_bodies = st.fixed_dictionaries(
    {},
    optional={
        "inputs": st.lists(tensors, max_size=3) | st.lists(st.lists(st.floats(), max_size=5),
                                                           max_size=3) | json_values,
        "instances": json_values,
        "dataframe_split": st.fixed_dictionaries({}, optional={"columns": json_values,
                                                               "data": json_values,
                                                               "index": json_values}),
        "dataframe_records": st.lists(st.dictionaries(st.sampled_from("abcd"), _scalars),
                                      max_size=3) | json_values,
        "outputs": st.lists(st.fixed_dictionaries({"name": st.text(max_size=8) | json_values},
                                                  optional={"parameters": json_values}),
                            max_size=3) | json_values,
        "parameters": st.dictionaries(st.sampled_from(["binary_data_output", "x"]), json_values),
        "id": json_values,
    },
)  # fmt: skip


def _dump(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


_deep = st.integers(1, 120_000).map(lambda n: b"[" * n + b"]" * (n % 3 and n))
_huge_int = st.integers(1, 6000).map(lambda n: b'{"inputs": [[' + b"9" * n + b", 1, 2, 3]]}")
_non_finite = st.sampled_from(
    [b'{"inputs": [[NaN, 1.0, 2.0, 3.0]]}', b'{"inputs": [[Infinity, -Infinity, 1e999, 0.0]]}',
     b'{"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32",'
     b' "data": [NaN, Infinity, -1e999, 1]}]}',
     b'{"inputs": [{"name": "input", "shape": [1, 4], "datatype": "UINT8", "data": [-1, 2, 3, 4]}]}',
     b'{"inputs": [{"name": "input", "shape": [1, 4], "datatype": "INT64",'
     b' "data": [99999999999999999999, 2, 3, 4]}]}']
)  # fmt: skip
bodies = (
    protocol_bodies.map(_dump) | json_values.map(_dump) | st.binary(max_size=300)
    | _deep | _huge_int | _non_finite
)  # fmt: skip

_header_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
content_types = st.sampled_from(
    [None, "application/json", "application/json; charset=utf-8", "application/json; charset=latin-1",
     "application/json; x=y", "text/csv", "text/plain", "application/octet-stream", "",
     ";;;", "application/json; charset", "multipart/form-data; boundary=x"]
) | _header_text  # fmt: skip


@st.composite
def binary_requests(draw: st.DrawFn) -> tuple[bytes, dict[str, str]]:
    """A JSON header then raw bytes, with a length header that may lie."""
    size = draw(st.integers(0, 40))
    head = {"inputs": [{"name": "input", "shape": draw(st.sampled_from([[1, 4], [2, 4], [1, 2]])),
                        "datatype": draw(st.sampled_from(["FP32", "BYTES", "BOOL", "INT64"])),
                        "parameters": {"binary_data_size": draw(st.integers(-1, 40) | st.just(size))}}]}  # fmt: skip
    if draw(st.booleans()):
        head["outputs"] = [{"name": draw(st.sampled_from(["output", "nope"])),
                            "parameters": {"binary_data": draw(json_values)}}]  # fmt: skip
    raw_head = _dump(head)
    raw = raw_head + draw(st.binary(min_size=size, max_size=size))
    length = draw(
        st.just(str(len(raw_head))) | st.integers(-3, len(raw) + 5).map(str) | _header_text
    )
    return raw, {"Inference-Header-Content-Length": length}


class Server:
    def __init__(self, port: int) -> None:
        self.port = port

    def send(self, method: str, path: str, raw: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, bytes]:  # fmt: skip
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request(method, path, body=raw, headers=headers or {})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def check(self, method: str, path: str, raw: bytes | None = None,
              headers: dict[str, str] | None = None) -> None:  # fmt: skip
        status, answer = self.send(method, path, raw, headers)
        assert status < 500, (method, path, raw[:300] if raw else raw, headers, answer[:500])
        if path.startswith("/v2") and status >= 400:
            json.loads(answer)["error"]  # the protocol's error body, readable by tritonclient
        elif answer[:1] in (b"{", b"["):
            json.loads(answer, parse_constant=_no_constant)  # valid JSON, no NaN tokens


def _no_constant(token: str) -> None:
    raise AssertionError(f"the answer holds {token}, which is not JSON")


@pytest.fixture(scope="module")
def server(registry: Settings) -> Iterator[Server]:
    d = manager.deploy("lin/1", name="fuzz", capture=False, settings=registry)
    try:
        yield Server(d.port)
    finally:
        manager.undeploy(d.id, settings=registry)


def _valid(server: Server) -> list[tuple[int, bytes]]:
    return [
        server.send("POST", "/invocations", b'{"inputs": [[1.0, 2.0, 3.0, 4.0]]}',
                    {"Content-Type": "application/json"}),
        server.send("POST", "/v2/models/lin/infer", _dump(VALID_V2)),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def before(server: Server) -> list[tuple[int, bytes]]:
    answers = _valid(server)
    assert [status for status, _ in answers] == [200, 200]
    return answers


@FUZZ
@given(path=st.sampled_from(POSTS), body=bodies, ctype=content_types)
def test_bodies(server: Server, before: Any, path: str, body: bytes, ctype: str | None) -> None:
    server.check("POST", path, body, {} if ctype is None else {"Content-Type": ctype})


@FUZZ
@given(path=st.sampled_from(POSTS[1:]), request=binary_requests())
def test_binary_tensor_data(
    server: Server, before: Any, path: str, request: tuple[bytes, dict[str, str]]
) -> None:
    server.check("POST", path, *request)


@settings(FUZZ, max_examples=300)
@given(
    path=st.sampled_from(GETS + POSTS)
    | st.lists(st.text(max_size=10), min_size=1, max_size=6).map(
        lambda parts: "/v2/models/" + "/".join(quote(p, safe="") for p in parts)
    ),
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]),
    declared=st.none() | st.sampled_from(["-1", "abc", "99999999999999", "1e3"]),
)
def test_paths_methods_and_lengths(
    server: Server, before: Any, path: str, method: str, declared: str | None
) -> None:
    headers = {} if declared is None else {"Content-Length": declared}
    status, answer = server.send(method, path, None, headers)
    assert status < 500, (method, path, declared, answer[:300])


def test_valid_requests_are_answered_the_same_afterwards(server: Server, before: Any) -> None:
    assert _valid(server) == before
    status, metrics = server.send("GET", "/metrics")
    assert status == 200
    assert 'mlops_request_errors_total{status="500"}' not in metrics.decode()
