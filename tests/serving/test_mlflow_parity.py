"""``POST /invocations`` of our server against ``mlflow models serve`` on the same model.

The cases are MLflow's own scoring-server test cases (malformed JSON, non-object bodies,
missing or doubled input fields, bad split/records tables, bad CSV, content types and
their parameters) and the requests its users send, on the registered ``lin/1`` (no MLflow
signature) and on a saved model with the tensor signature ``package()`` logs. Each case
is sent to both servers; the answers must be the same, or differ as README's table says.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from jupyter_mlops.config import Settings
from jupyter_mlops.serving import manager
from tests.serving.conftest import WEIGHTS, free_port, linear_onnx, start_server, stop_server

pytestmark = pytest.mark.slow

X = [[1.0, 2.0, 3.0, 4.0], [0.5, -1.0, 2.0, 0.0]]
COLUMNS = ["a", "b", "c", "d"]
JSON = "application/json"
PARQUET = "application/vnd.apache.parquet"


def _parquet() -> bytes:
    import pandas as pd

    out = io.BytesIO()
    pd.DataFrame(X, columns=COLUMNS).to_parquet(out)
    return out.getvalue()


#: (name, content type, body) -> both servers answer the same status and body
SAME = [
    ("inputs", JSON, {"inputs": X}),
    ("instances", JSON, {"instances": X}),
    ("instances of objects", JSON, {"instances": [{"input": r} for r in X]}),
    ("inputs by name", JSON, {"inputs": {"input": X}}),
    ("dataframe_split", JSON, {"dataframe_split": {"columns": COLUMNS, "data": X}}),
    ("dataframe_split without columns", JSON, {"dataframe_split": {"data": X}}),
    ("dataframe_records", JSON, {"dataframe_records": [dict(zip(COLUMNS, r)) for r in X]}),
    ("csv", "text/csv", "a,b,c,d\n1.0,2.0,3.0,4.0\n0.5,-1.0,2.0,0.0\n"),
    ("parquet", PARQUET, _parquet()),
    ("not parquet", PARQUET, b"PAR1 not really"),
    ("charset utf-8", JSON + "; charset=UTF-8", {"inputs": X}),
    ("params and unknown keys are ignored", JSON, {"inputs": X, "params": {}, "extra": 1}),
    ("malformed json", JSON, "this is,,,, not valid json"),
    ("empty body", JSON, ""),
    ("not utf-8", JSON, b'{"inputs": "\xff"}'),
    ("a number", JSON, "1"),
    ("a string", JSON, '"1"'),
    ("a list", JSON, "[1]"),
    ("no input field", JSON, {"not": "a serialized dataframe"}),
    ("two input fields", JSON, {"dataframe_records": [], "dataframe_split": {"data": []}}),
    ("split as records", JSON, {"dataframe_split": [dict(zip(COLUMNS, r)) for r in X]}),
    ("records as split", JSON, {"dataframe_records": {"columns": COLUMNS, "data": X}}),
    ("split with extra keys", JSON, {"dataframe_split": {"data": X, "dtype": "x"}}),
    ("split of bad shape", JSON, {"dataframe_split": {"index": [1, 2], "data": [[1], [2], [3]]}}),
    ("ragged", JSON, {"inputs": [[1.0, 2.0, 3.0], [4.0]]}),
    ("empty csv", "text/csv", ""),
    ("charset latin-1", JSON + "; charset=latin-1", {"inputs": X}),
    ("unknown content type parameter", JSON + "; something=something", {"inputs": X}),
    ("unsupported content type", "not_a_supported_content_type", {"inputs": X}),
    ("text/plain", "text/plain", {"inputs": X}),
]
#: both answer 400 BAD_REQUEST; our message is MLflow's followed by what to fix
EXPLAINED = [
    ("no batch axis", JSON, {"inputs": [1.0, 2.0, 3.0, 4.0]}),
    ("too few columns", JSON, {"inputs": [[1.0, 2.0]]}),
    ("integers for a float input", JSON, {"inputs": [[1, 2, 3, 4]]}),
    ("strings", JSON, {"inputs": [["a", "b", "c", "d"]]}),
    ("wrong input name", JSON, {"inputs": {"x": X}}),
    ("empty inputs", JSON, {"inputs": []}),
]
#: the same statuses, other words: MLflow hands these to the model and reports its failure
SAME_STATUS = [
    ("an LLM chat body", JSON, {"messages": []}),
]
#: with a tensor signature (what package() logs), MLflow casts to its dtype and refuses names
SIGNED_SAME = [
    ("inputs", JSON, {"inputs": X}),
    ("integers cast to the signature", JSON, {"inputs": [[1, 2, 3, 4]]}),
    ("instances", JSON, {"instances": X}),
    ("a table becomes the tensor", JSON, {"dataframe_split": {"data": X}}),
    ("a name for the unnamed tensor", JSON, {"inputs": {"input": X}}),
]
SIGNED_SAME_STATUS = [
    ("no batch axis", JSON, {"inputs": [1.0, 2.0, 3.0, 4.0]}),
]


def _send(port: int, method: str, path: str, ctype: str | None = None,
          body: Any = None) -> tuple[int, str, bytes]:  # fmt: skip
    raw = body if isinstance(body, bytes) else (
        body.encode() if isinstance(body, str) else json.dumps(body).encode()
    )  # fmt: skip
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        headers = {} if ctype is None else {"Content-Type": ctype}
        conn.request(method, path, body=raw if body is not None else None, headers=headers)
        response = conn.getresponse()
        return response.status, response.getheader("content-type") or "", response.read()
    finally:
        conn.close()


_SET = re.compile(r"\{'[^{}]*'\}")


def _normal(content_type: str, raw: bytes) -> Any:
    """The body as a client reads it; Python sets printed in messages put in one order."""
    if not content_type.startswith("application/json"):
        return ("text", raw.decode())
    data = json.loads(raw)
    if isinstance(data, dict):
        data.pop("stack_trace", None)  # MLflow's server-side traceback: we send none
        if isinstance(data.get("message"), str):
            data["message"] = _SET.sub(
                lambda m: "{" + ", ".join(sorted(m.group(0)[1:-1].split(", "))) + "}",
                data["message"],
            )
    return data


def _mlflow_serve(model_uri: str, env: dict[str, str], cwd: Path) -> tuple[Any, int]:
    port = free_port()
    venv_bin = Path(sys.executable).parent
    command = [str(venv_bin / "mlflow"), "models", "serve", "-m", model_uri,
               "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)]  # fmt: skip
    env = {**env, "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}"}
    return start_server(command, port, cwd / f"mlflow-{port}.log", env=env, cwd=cwd), port


@pytest.fixture(scope="module")
def pair(registry: Settings) -> Iterator[tuple[int, int]]:
    """(MLflow's port, ours) serving ``models:/lin/1``."""
    env = dict(os.environ, MLFLOW_TRACKING_URI=registry.tracking_uri,
               MLFLOW_REGISTRY_URI=registry.registry_uri)  # fmt: skip
    proc, port = _mlflow_serve("models:/lin/1", env, registry.project_dir)
    try:
        ours = manager.deploy("lin/1", name="parity", capture=False, settings=registry)
        try:
            yield port, ours.port
        finally:
            manager.undeploy(ours.id, settings=registry)
    finally:
        stop_server(proc)


@pytest.fixture(scope="module")
def signed_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int]]:
    """(MLflow's port, ours) serving a saved model with an unnamed tensor signature."""
    import mlflow.onnx
    from mlflow.models import infer_signature

    root = tmp_path_factory.mktemp("signed")
    example = np.asarray(X, dtype=np.float32)
    mlflow.onnx.save_model(
        linear_onnx(WEIGHTS["1"]), root / "model", signature=infer_signature(example),
        input_example=example, onnx_execution_providers=["CPUExecutionProvider"],
    )  # fmt: skip
    config = {"model": "signed", "versions": {"1": "model/model.onnx"}, "weights": {"1": 1.0}}
    (root / "deployment.json").write_text(json.dumps({**config, "generation": 1}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    theirs, their_port = _mlflow_serve(str(root / "model"), env, root)
    try:
        port = free_port()
        command = [sys.executable, "-m", "jupyter_mlops.serving", "--config",
                   str(root / "deployment.json"), "--port", str(port)]  # fmt: skip
        ours = start_server(command, port, root / "ours.log", env=env, cwd=root)
        try:
            yield their_port, port
        finally:
            stop_server(ours)
    finally:
        stop_server(theirs)


def _both(pair: tuple[int, int], ctype: str, body: Any) -> tuple[Any, Any]:
    theirs = _send(pair[0], "POST", "/invocations", ctype, body)
    ours = _send(pair[1], "POST", "/invocations", ctype, body)
    return (theirs[0], _normal(theirs[1], theirs[2])), (ours[0], _normal(ours[1], ours[2]))


@pytest.mark.parametrize(("name", "ctype", "body"), SAME, ids=[c[0] for c in SAME])
def test_same_status_and_body(pair: tuple[int, int], name: str, ctype: str, body: Any) -> None:
    theirs, ours = _both(pair, ctype, body)
    assert ours == theirs


@pytest.mark.parametrize(("name", "ctype", "body"), EXPLAINED, ids=[c[0] for c in EXPLAINED])
def test_same_status_and_code_with_mlflows_message_first(
    pair: tuple[int, int], name: str, ctype: str, body: Any
) -> None:
    (their_status, theirs), (our_status, ours) = _both(pair, ctype, body)
    assert (our_status, ours["error_code"]) == (their_status, theirs["error_code"]) == (
        400, "BAD_REQUEST")  # fmt: skip
    assert ours["message"].startswith(theirs["message"] + " ")
    assert len(ours["message"]) > len(theirs["message"]) + 10


@pytest.mark.parametrize(("name", "ctype", "body"), SAME_STATUS, ids=[c[0] for c in SAME_STATUS])
def test_same_status(pair: tuple[int, int], name: str, ctype: str, body: Any) -> None:
    (their_status, _), (our_status, ours) = _both(pair, ctype, body)
    assert our_status == their_status == 400
    assert "The input must be a JSON dictionary with exactly one of" in ours["message"]


@pytest.mark.parametrize(("path"), ["/ping", "/health", "/version", "/nowhere"])
def test_same_simple_routes(pair: tuple[int, int], path: str) -> None:
    theirs = _send(pair[0], "GET", path)
    ours = _send(pair[1], "GET", path)
    assert ours[0] == theirs[0]
    assert ours[2] == theirs[2] or json.loads(ours[2]) == json.loads(theirs[2])


def test_same_method_refusal(pair: tuple[int, int]) -> None:
    theirs = _send(pair[0], "GET", "/invocations")
    ours = _send(pair[1], "GET", "/invocations")
    assert (ours[0], json.loads(ours[2])) == (theirs[0], json.loads(theirs[2])) == (
        405, {"detail": "Method Not Allowed"})  # fmt: skip


def test_deliberate_differences(pair: tuple[int, int]) -> None:
    """README's table: where MLflow answers 500 or writes invalid JSON."""
    nan = '{"inputs": [[NaN, 1.0, 2.0, 3.0]]}'
    their_status, _, their_raw = _send(pair[0], "POST", "/invocations", JSON, nan)
    our_status, _, our_raw = _send(pair[1], "POST", "/invocations", JSON, nan)
    assert (their_status, our_status) == (200, 200)
    assert b"NaN" in their_raw  # not JSON: strict parsers (JavaScript's, Go's) refuse it
    assert json.loads(our_raw, parse_constant=_refuse) == {"predictions": {"output": [
        [None, None, None]]}}  # fmt: skip
    theirs = _send(pair[0], "POST", "/invocations", None, {"inputs": X})
    ours = _send(pair[1], "POST", "/invocations", None, {"inputs": X})
    assert (theirs[0], ours[0]) == (500, 200)  # no Content-Type: we read JSON
    deep = "[" * 100_000
    theirs = _send(pair[0], "POST", "/invocations", JSON, deep)
    ours = _send(pair[1], "POST", "/invocations", JSON, deep)
    assert (theirs[0], ours[0]) == (500, 400)
    assert json.loads(ours[2])["message"] == (
        "Invalid input. the body is nested too deeply to be a tensor"
    )


def _refuse(token: str) -> None:
    raise ValueError(f"non-standard JSON token {token}")


@pytest.mark.parametrize(("name", "ctype", "body"), SIGNED_SAME, ids=[c[0] for c in SIGNED_SAME])
def test_signed_model_same_status_and_body(
    signed_pair: tuple[int, int], name: str, ctype: str, body: Any
) -> None:
    theirs, ours = _both(signed_pair, ctype, body)
    assert ours == theirs


def test_signed_model_refuses_a_row_without_its_batch_axis(signed_pair: tuple[int, int]) -> None:
    (their_status, _), (our_status, ours) = _both(signed_pair, JSON, SIGNED_SAME_STATUS[0][2])
    assert our_status == their_status == 400
    assert ours["message"].endswith("input 'input': shape [4] does not match ['batch', 4]")
