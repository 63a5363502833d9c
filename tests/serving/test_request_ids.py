"""Request ids on both protocols of a real server process: the client's or a new one, in the
``x-request-id`` header and in the capture (``<id>-<row>`` for the rows of a batch), and a
400 that says what is wrong with a bad one."""

from __future__ import annotations

import http.client
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import pyarrow as pa
import pytest
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from jupyter_mlops.config import Settings
from jupyter_mlops.serving import manager
from jupyter_mlops.serving.capture import capture_frame
from jupyter_mlops.serving.capture_arrow import Pending
from jupyter_mlops.serving.model import RequestError
from jupyter_mlops.serving.request_ids import check_request_id, request_id, row_ids
from tests.conftest import wait_for_capture
from tests.serving.conftest import expected

X = np.array([[1, 2, 3, 4], [0.5, -1, 2, 0], [0, 0, 1, 1]], dtype=np.float32)
UUID_HEX = re.compile(r"[0-9a-f]{32}")
RULE = "a request id is 1 to 128 printable ASCII characters"


def record_batch(requests: list[tuple[float, str, str, float, str | None, Any, Any]]) -> Any:
    """The record batch the capture writes for these requests, all of one signature."""
    queued = Pending(requests[0][5], requests[0][6])
    for request in requests:
        queued.add(*request)
    return queued.record_batch()


def send(
    url: str, path: str, body: Any, headers: dict[str, Any] | None = None
) -> tuple[int, dict[str, str], Any]:
    """One request on its own connection (a refused header closes it)."""
    parsed = urlparse(url)
    conn = http.client.HTTPConnection(str(parsed.hostname), parsed.port, timeout=30)
    try:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        conn.request("POST", path, raw, {"Content-Type": "application/json", **(headers or {})})
        response = conn.getresponse()
        payload = response.read()
        try:
            answer = json.loads(payload)
        except ValueError:
            answer = payload.decode()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, answer
    finally:
        conn.close()


def v2_body(rows: np.ndarray, **extra: Any) -> dict[str, Any]:
    tensor = {"name": "input", "shape": list(rows.shape), "datatype": "FP32",
              "data": rows.ravel().tolist()}  # fmt: skip
    return {**extra, "inputs": [tensor]}


# -- the rules, without a server ----------------------------------------------------------------
def test_a_missing_or_empty_id_gets_a_new_one_and_a_given_one_is_kept() -> None:
    assert UUID_HEX.fullmatch(request_id(None))
    assert UUID_HEX.fullmatch(request_id(""))
    made = {request_id(None) for _ in range(10_000)}
    assert len(made) == 10_000
    for rid in list(made)[:100]:  # a uuid4 as uuid.uuid4().hex writes it
        made_as = uuid.UUID(hex=rid)
        assert (made_as.version, made_as.variant, made_as.hex) == (4, uuid.RFC_4122, rid)
    assert request_id("order 17/a:b") == "order 17/a:b"
    assert request_id("x" * 128) == "x" * 128


@pytest.mark.parametrize(
    ("given", "header", "message"),
    [
        ("x" * 129, True, f"X-Request-ID is 129 characters long; {RULE}"),
        ("ab\tc", True, f"X-Request-ID has a control character (0x09) at position 2; {RULE}"),
        ("ab\x7f", True, f"X-Request-ID has a control character (0x7f) at position 2; {RULE}"),
        ("a\xc3\xa9", True, f"X-Request-ID has a non-ASCII byte (0xc3) at position 1; {RULE}"),
        (
            "caf\xe9",
            False,
            f"X-Request-ID has a non-ASCII character ('\xe9') at position 3; {RULE}",
        ),
    ],
)
def test_a_bad_id_is_a_400_that_says_what_is_wrong(given: str, header: bool, message: str) -> None:
    with pytest.raises(RequestError) as caught:
        check_request_id(given, "X-Request-ID", header=header)
    assert (caught.value.status, caught.value.message) == (400, message)


def test_rows_of_a_batch_get_the_request_id_and_their_index() -> None:
    assert row_ids(["one", "batch", None, "two"], [1, 3, 2, 1]) == [
        "one", "batch-0", "batch-1", "batch-2", None, None, "two",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "ids",
    [
        ["a" * 32, "b", "c-1"],  # ASCII: built from one joined string
        ["zürich", "b", "東京"],  # not ASCII: encoded one by one
        ["a", None, "c"],  # a request without an id
        [None, None, None],
    ],
)
def test_request_ids_read_back_as_written(ids: list[str | None]) -> None:
    entries = [
        (float(i), "1", "mlflow", 0.0001, rid, {"input": X[:1]}, {"output": X[:1, :3]})
        for i, rid in enumerate(ids)
    ]
    batch = record_batch(entries)
    assert batch.column("request_id").to_pylist() == ids
    assert batch.column("version").to_pylist() == ["1"] * 3
    assert batch.column("time").to_pylist() == [0.0, 1.0, 2.0]


def test_segments_and_json_lines_written_without_ids_read_as_none(tmp_path: Path) -> None:
    """Captures from before request ids: the column is there, every value None."""
    entries = [
        (1.0, "1", "mlflow", 0.0001, None, {"input": X[:2]}, {"output": X[:2, :3]}),
        (2.0, "1", "v2", 0.0001, None, {"input": X[:1]}, {"output": X[:1, :3]}),
    ]
    batch = record_batch(entries)
    old = batch.select([n for n in batch.schema.names if n != "request_id"])
    path = tmp_path / "capture-20261101T100000.000000Z-1.arrows"
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, old.schema) as writer:
        writer.write_batch(old)
    line = {"time": 0.5, "version": "1", "protocol": "mlflow", "latency_ms": 0.1,
            "inputs": {"input": [[1, 2, 3, 4]]}, "outputs": {"output": [[1, 2, 3]]}}  # fmt: skip
    (tmp_path / "capture-20261101-09.jsonl").write_text(json.dumps(line) + "\n")
    log = capture_frame(tmp_path)
    assert len(log) == 4
    assert log["request_id"].tolist() == [None] * 4


# -- a real server --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def served(registry: Settings) -> Iterator[manager.Deployment]:
    d = manager.deploy("lin/1", name="ids", settings=registry)
    try:
        yield d
    finally:
        manager.undeploy(d.id, settings=registry)


@pytest.mark.slow
def test_both_protocols_return_the_id_and_the_capture_keeps_it_per_row(
    served: manager.Deployment, registry: Settings
) -> None:
    url = served.url
    status, headers, answer = send(url, "/invocations", {"inputs": X[:1].tolist()},
                                   {"X-Request-ID": "order-17"})  # fmt: skip
    assert (status, headers["x-request-id"]) == (200, "order-17")
    np.testing.assert_allclose(answer["predictions"]["output"], expected("1", X[:1]), rtol=1e-6)
    status, headers, _ = send(url, "/invocations", {"inputs": X.tolist()},
                              {"X-Request-ID": "batch-9"})  # fmt: skip
    assert (status, headers["x-request-id"]) == (200, "batch-9")
    status, headers, _ = send(url, "/invocations", {"inputs": X[:1].tolist()})
    assert status == 200 and UUID_HEX.fullmatch(headers["x-request-id"])
    generated = headers["x-request-id"]

    # /v2: the body's id (echoed in the body too), else X-Request-ID, else a new one
    status, headers, answer = send(url, "/v2/models/lin/infer", v2_body(X[:1], id="v2-body"),
                                   {"X-Request-ID": "ignored"})  # fmt: skip
    assert (status, headers["x-request-id"], answer["id"]) == (200, "v2-body", "v2-body")
    status, headers, answer = send(url, "/v2/models/lin/infer", v2_body(X[:2]),
                                   {"X-Request-ID": "v2-header"})  # fmt: skip
    assert (status, headers["x-request-id"]) == (200, "v2-header") and "id" not in answer
    status, headers, answer = send(url, "/v2/models/lin/infer", v2_body(X[:1], id=""))
    assert status == 200 and UUID_HEX.fullmatch(headers["x-request-id"]) and answer["id"] == ""
    v2_generated = headers["x-request-id"]

    client = httpclient.InferenceServerClient(urlparse(url).netloc)
    tensor = httpclient.InferInput("input", [1, 4], "FP32")
    tensor.set_data_from_numpy(X[:1])
    assert client.infer("lin", [tensor], request_id="triton-1").get_response()["id"] == "triton-1"

    log = wait_for_capture(served.id, registry, 10)
    assert log["request_id"].tolist() == [
        "order-17", "batch-9-0", "batch-9-1", "batch-9-2", generated,
        "v2-body", "v2-header-0", "v2-header-1", v2_generated, "triton-1",
    ]  # fmt: skip
    assert log["f0"].tolist()[1:4] == X[:, 0].tolist()


@pytest.mark.slow
def test_a_refused_prediction_carries_its_id(served: manager.Deployment) -> None:
    status, headers, answer = send(served.url, "/invocations", {"inputs": [[1.0, 2.0]]},
                                   {"X-Request-ID": "bad-shape"})  # fmt: skip
    assert (status, headers["x-request-id"]) == (400, "bad-shape")
    assert "shape [1, 2] does not match ['batch', 4]" in answer["message"]
    status, headers, answer = send(served.url, "/invocations", {"inputs": X.tolist()},
                                   {"X-Request-ID": "csv", "Content-Type": "text/plain"})  # fmt: skip
    assert (status, headers["x-request-id"]) == (415, "csv")


@pytest.mark.slow
@pytest.mark.parametrize("path", ["/invocations", "/v2/models/lin/infer"])
@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("r" * 129, f"X-Request-ID is 129 characters long; {RULE}"),
        ("r" * 5000, f"X-Request-ID is 5000 characters long; {RULE}"),
        ("ab\tcd", f"X-Request-ID has a control character (0x09) at position 2; {RULE}"),
        ("ab\u00ffcd", f"X-Request-ID has a non-ASCII byte (0xff) at position 2; {RULE}"),
    ],
)
def test_a_bad_header_is_a_400_in_the_protocols_error_body(
    served: manager.Deployment, path: str, value: str, message: str
) -> None:
    body = {"inputs": X.tolist()} if path == "/invocations" else v2_body(X)
    status, headers, answer = send(served.url, path, body, {"X-Request-ID": value})
    assert status == 400 and "x-request-id" not in headers
    assert (answer["message"] if path == "/invocations" else answer["error"]) == message


@pytest.mark.slow
@pytest.mark.parametrize("path", ["/invocations", "/v2/models/lin/infer"])
@pytest.mark.parametrize("char", ["\x01", "\x1b", "\x7f", "\x00"])
def test_a_control_character_the_http_parser_refuses_is_named(
    served: manager.Deployment, path: str, char: str
) -> None:
    """httptools refuses these before the app sees them: the 400 still says which header."""
    status, _, answer = send(served.url, path, v2_body(X), {"X-Request-ID": f"ab{char}cd"})
    assert status == 400
    assert answer == (
        f"X-Request-ID has a control character (0x{ord(char):02x}) at position 2; {RULE}"
    )
    status, _, answer = send(served.url, path, v2_body(X), {"X-Trace": f"{char}"})
    assert (status, answer) == (
        400, f"request header 'X-Trace' has a control character (0x{ord(char):02x}) at "
        "position 0; header values cannot hold one",
    )  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(
    ("request_id_", "message"),
    [
        ("q" * 200, f"the request's 'id' is 200 characters long; {RULE}"),
        ("line\nbreak", f"the request's 'id' has a control character (0x0a) at position 4; {RULE}"),
        (
            "caf\u00e9",
            f"the request's 'id' has a non-ASCII character ('\u00e9') at position 3; {RULE}",
        ),
    ],
)
def test_a_bad_body_id_reaches_tritonclient_as_a_400(
    served: manager.Deployment, request_id_: str, message: str
) -> None:
    client = httpclient.InferenceServerClient(urlparse(served.url).netloc)
    tensor = httpclient.InferInput("input", [1, 4], "FP32")
    tensor.set_data_from_numpy(X[:1])
    with pytest.raises(InferenceServerException) as caught:
        client.infer("lin", [tensor], request_id=request_id_)
    assert (caught.value.status(), caught.value.message()) == ("400", message)
