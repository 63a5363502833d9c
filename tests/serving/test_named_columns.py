"""Column-named requests end to end, on real server processes: a model of a mixed-type table
(one ONNX input per column) answers MLflow's table, record and column formats and the Open
Inference Protocol's per-input tensors (BYTES for strings); its capture, ``inference_log``,
drift and ``monitor()`` carry the real column names, strings as strings, and test the
string column as a category. A tensor model whose input is not named ``input`` works too."""

from __future__ import annotations

import http.client
import io
import json
import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import numpy as np
import pandas as pd
import pytest
import tritonclient.http as httpclient
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper
from tritonclient.utils import InferenceServerException

from jupyter_mlops import store
from jupyter_mlops.config import Settings, load_settings
from jupyter_mlops.monitoring.monitor import monitor
from jupyter_mlops.monitoring.sources import DriftSource, drift_between
from jupyter_mlops.packaging.requirements import served_requirements
from jupyter_mlops.registry.service import register
from jupyter_mlops.serving import manager
from tests.conftest import stop_deployments, wait_for_capture
from tests.serving.tables import COLUMNS, log_table_model, table

pytestmark = pytest.mark.slow

JSON = "application/json"
#: mixed strings, numbers and nulls (a missing income is NaN, the pipeline imputes it)
ROWS = [["Paris", 30, 41_000.5], ["Rome", 41, None], ["Oslo", 67, 80_000], ["Lima", 25, 52_000]]
#: the test of a categorical column in Evidently's registry, by its display name
CATEGORICAL_TESTS = ("chi-square p_value", "Jensen-Shannon distance", "Z-test p_value")
W = np.arange(12, dtype=np.float32).reshape(4, 3) / 10


def _pixels_onnx() -> Any:
    """A tensor model whose one input is ``pixels`` (not ``input``)."""
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["pixels", "w"], ["scores"])], "pixels",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", 3])],
        initializer=[numpy_helper.from_array(W, "w")],
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    import mlflow
    import mlflow.onnx

    root = tmp_path_factory.mktemp("columns")
    (root / "mlops.yaml").write_text("")
    saved = {k: os.environ.pop(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
             if k in os.environ}  # fmt: skip
    settings = load_settings(root)
    store.use_fluent(settings)
    try:
        pipeline, frame = log_table_model(settings, "houses")
        experiment = store.get_or_create_experiment(settings, "models")
        with mlflow.start_run(experiment_id=experiment):
            info = mlflow.onnx.log_model(
                onnx_model=_pixels_onnx(), name="model",
                onnx_execution_providers=["CPUExecutionProvider"], pip_requirements=served_requirements(),
            )  # fmt: skip
            ref = pd.DataFrame(np.random.default_rng(1).normal(0, 1, (500, 4)),
                               columns=[f"f{i}" for i in range(4)])  # fmt: skip
            ref.to_parquet(root / "reference.parquet")
            mlflow.log_artifact(str(root / "reference.parquet"))
        register(info.model_uri, "pixels", settings=settings)
        houses = manager.deploy("houses/1", name="houses", settings=settings)
        pixels = manager.deploy("pixels/1", name="pixels", settings=settings)
        yield {"settings": settings, "pipeline": pipeline, "frame": frame,
               "houses": houses, "pixels": pixels}  # fmt: skip
    finally:  # every server this module started, passed or failed
        try:
            stop_deployments(settings)
        finally:
            os.environ.update(saved)
            store.forget_clients()


def _post(url: str, body: Any, ctype: str = JSON, path: str = "/invocations") -> tuple[int, Any]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    conn = http.client.HTTPConnection(urlparse(url).netloc, timeout=60)
    try:
        conn.request("POST", path, body=raw, headers={"Content-Type": ctype})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def _expected(pipeline: Any, rows: list[list[Any]]) -> tuple[list[int], np.ndarray]:
    frame = pd.DataFrame(rows, columns=COLUMNS)
    return pipeline.predict(frame).tolist(), pipeline.predict_proba(frame)


def test_dataframe_split_with_strings_numbers_and_nulls(project: dict[str, Any]) -> None:
    status, body = _post(project["houses"].url,
                         {"dataframe_split": {"columns": COLUMNS, "data": ROWS}})  # fmt: skip
    assert status == 200, body
    labels, proba = _expected(project["pipeline"], ROWS)
    assert [p["label"] for p in body["predictions"]] == labels
    got = np.array([p["probabilities"] for p in body["predictions"]])
    assert got.shape == (4, 2)
    np.testing.assert_allclose(got, proba, atol=1e-4)


def test_every_format_of_the_same_rows_gets_the_same_answer(project: dict[str, Any]) -> None:
    url = project["houses"].url
    records = [dict(zip(COLUMNS, r, strict=True)) for r in ROWS]
    by_column = {c: [r[i] for r in ROWS] for i, c in enumerate(COLUMNS)}
    frame = pd.DataFrame(ROWS, columns=COLUMNS)
    parquet = io.BytesIO()
    frame.to_parquet(parquet)
    bodies = [
        ({"dataframe_records": records}, JSON),
        ({"inputs": by_column}, JSON),
        ({"inputs": {c: [[v] for v in vs] for c, vs in by_column.items()}}, JSON),
        ({"inputs": records}, JSON),
        ({"instances": records}, JSON),
        ({"dataframe_split": {"columns": COLUMNS[::-1], "data": [r[::-1] for r in ROWS]}}, JSON),
        (frame.to_csv(index=False).encode(), "text/csv"),
        (parquet.getvalue(), "application/vnd.apache.parquet"),
    ]
    first = _post(url, {"dataframe_split": {"columns": COLUMNS, "data": ROWS}})
    for body, ctype in bodies:
        assert _post(url, body, ctype) == first, body


BAD = [
    ("missing column", {"columns": ["city", "age"], "data": [["Paris", 30]]}, "income"),
    ("extra column", {"columns": [*COLUMNS, "zip"], "data": [[*ROWS[0], 75001]]}, "zip"),
    ("string for an integer", {"columns": COLUMNS, "data": [["Paris", "thirty", 1.0]]}, "age"),
    ("string for a float", {"columns": COLUMNS, "data": [["Paris", 30, "rich"]]}, "income"),
    ("number for a string", {"columns": COLUMNS, "data": [[75, 30, 1.0]]}, "city"),
    ("missing integer", {"columns": COLUMNS, "data": [["Paris", None, 1.0]]}, "age"),
    ("missing string", {"columns": COLUMNS, "data": [["Paris", 3, 1.0], [None, 4, 2.0]]}, "city"),
    ("fraction for an integer", {"columns": COLUMNS, "data": [["Paris", 30.5, 1.0]]}, "age"),
    ("out of range", {"columns": COLUMNS, "data": [["Paris", 2**70, 1.0]]}, "age"),
    ("no column names", {"data": [ROWS[0]]}, "city"),
]


@pytest.mark.parametrize(("name", "split", "column"), BAD, ids=[b[0] for b in BAD])
def test_a_bad_table_is_a_400_naming_the_column(
    project: dict[str, Any], name: str, split: dict[str, Any], column: str
) -> None:
    status, body = _post(project["houses"].url, {"dataframe_split": split})
    assert status == 400, body
    assert column in body["message"]
    assert body["error_code"] in ("BAD_REQUEST", "INVALID_PARAMETER_VALUE")


def test_ragged_columns_and_unnamed_rows_are_400s(project: dict[str, Any]) -> None:
    url = project["houses"].url
    status, body = _post(url, {"inputs": {"city": ["Paris", "Rome"], "age": [1], "income": [1]}})
    assert status == 400 and "rows" in body["message"]
    status, body = _post(url, {"inputs": [ROWS[0]]})
    assert status == 400 and "Model is missing inputs ['city', 'age', 'income']" in body["message"]
    status, body = _post(url, {"instances": [{"city": "Paris", "age": 3}]})
    assert status == 400 and "income" in body["message"]


def test_mlflow_serve_refuses_what_it_refuses_and_cannot_answer_the_rest(
    project: dict[str, Any],
) -> None:
    """``mlflow models serve`` on the same version: the same status and error code for a
    missing column and a bad value, and MLflow's words first; a good request MLflow cannot
    answer at all (it hands onnxruntime 1-D columns), and we can."""
    from tests.serving.conftest import stop_server
    from tests.serving.test_mlflow_parity import _mlflow_serve, _send

    settings: Settings = project["settings"]
    env = dict(os.environ, MLFLOW_TRACKING_URI=settings.tracking_uri,
               MLFLOW_REGISTRY_URI=settings.registry_uri)  # fmt: skip
    proc, port = _mlflow_serve("models:/houses/1", env, settings.project_dir)
    try:
        ours = urlparse(project["houses"].url).port
        cases = [
            ({"columns": ["city", "age"], "data": [["Paris", 30]]},
             "Model is missing inputs ['income']."),
            ({"columns": COLUMNS, "data": [["Paris", "thirty", 1.0]]},
             "Invalid input. Data is not compatible with model signature. Failed to convert "
             "column age to type 'int64'"),
        ]  # fmt: skip
        for split, words in cases:
            body = {"dataframe_split": split}
            t_status, _, t_raw = _send(port, "POST", "/invocations", JSON, body)
            o_status, _, o_raw = _send(ours, "POST", "/invocations", JSON, body)
            theirs, mine = json.loads(t_raw), json.loads(o_raw)
            assert (o_status, mine["error_code"], mine["error_class"]) == (
                t_status, theirs["error_code"], theirs["error_class"])  # fmt: skip
            assert words in theirs["message"] and mine["message"].startswith(words)
        good = {"dataframe_split": {"columns": COLUMNS, "data": ROWS}}
        t_status, _, t_raw = _send(port, "POST", "/invocations", JSON, good)
        assert t_status == 400 and "unexpected error while evaluating" in t_raw.decode()
        assert _send(ours, "POST", "/invocations", JSON, good)[0] == 200
    finally:
        stop_server(proc)


def _client(d: manager.Deployment) -> httpclient.InferenceServerClient:
    return httpclient.InferenceServerClient(urlparse(d.url).netloc)


def _v2_inputs(rows: list[list[Any]], binary: bool) -> list[Any]:
    city = np.array([[r[0]] for r in rows], dtype=object)
    age = np.array([[r[1]] for r in rows], dtype=np.int64)
    income = np.array([[np.nan if r[2] is None else r[2]] for r in rows], dtype=np.float32)
    inputs = []
    for name, array, datatype in (("city", city, "BYTES"), ("age", age, "INT64"),
                                  ("income", income, "FP32")):  # fmt: skip
        inp = httpclient.InferInput(name, list(array.shape), datatype)
        inp.set_data_from_numpy(array, binary_data=binary)
        inputs.append(inp)
    return inputs


def test_v2_takes_one_tensor_per_column_with_bytes_for_strings(project: dict[str, Any]) -> None:
    client = _client(project["houses"])
    meta = client.get_model_metadata("houses")
    assert meta["inputs"] == [
        {"name": "city", "datatype": "BYTES", "shape": [-1, 1]},
        {"name": "age", "datatype": "INT64", "shape": [-1, 1]},
        {"name": "income", "datatype": "FP32", "shape": [-1, 1]},
    ]
    labels, proba = _expected(project["pipeline"], ROWS)
    for binary in (True, False):
        result = client.infer("houses", _v2_inputs(ROWS, binary))
        assert result.as_numpy("label").tolist() == labels
        np.testing.assert_allclose(result.as_numpy("probabilities"), proba, atol=1e-4)


def test_v2_wrong_datatype_is_a_400_in_the_protocols_error_body(project: dict[str, Any]) -> None:
    client = _client(project["houses"])
    inputs = _v2_inputs(ROWS[:1], True)
    wrong = httpclient.InferInput("city", [1, 1], "FP32")
    wrong.set_data_from_numpy(np.array([[1.0]], dtype=np.float32))
    with pytest.raises(InferenceServerException) as err:
        client.infer("houses", [wrong, *inputs[1:]])
    assert "'city'" in err.value.message() and "BYTES" in err.value.message()
    body = {"inputs": [
        {"name": "city", "datatype": "FP32", "shape": [1, 1], "data": [1.0]},
        {"name": "age", "datatype": "INT64", "shape": [1, 1], "data": [30]},
        {"name": "income", "datatype": "FP32", "shape": [1, 1], "data": [1.0]},
    ]}  # fmt: skip
    status, answer = _post(project["houses"].url, body, path="/v2/models/houses/infer")
    assert status == 400 and set(answer) == {"error"} and "'city'" in answer["error"]


def test_capture_drift_and_monitor_use_the_real_columns(project: dict[str, Any]) -> None:
    settings: Settings = project["settings"]
    d = manager.deploy("houses/1", name="houses-watch", settings=settings)
    shifted = table(400, seed=7, city_p=[0.85, 0.05, 0.05, 0.05])
    for i in range(0, len(shifted), 100):
        part = shifted.iloc[i : i + 100]
        body = {"dataframe_split": {"columns": COLUMNS, "data": part.values.tolist()}}
        assert _post(d.url, body)[0] == 200
    client = _client(d)
    client.infer("houses", _v2_inputs(ROWS[:1], True))
    log = wait_for_capture(d.id, settings, 401)
    assert log.attrs["inputs"] == COLUMNS
    assert log.attrs["outputs"] == ["out.label", "out.probabilities.0", "out.probabilities.1"]
    assert set(log["city"]) <= {*shifted["city"], "Paris"}
    assert all(type(v) is str for v in log["city"])
    assert log["age"].dtype == np.int64 and log["income"].dtype == np.float32
    assert list(log["protocol"].unique()) == ["mlflow", "v2"]

    result = monitor(d.id, "1h", act=False, settings=settings)
    columns = {c["column"]: c for c in result.drift["columns"]}
    assert set(columns) == set(COLUMNS)
    assert columns["city"]["column_type"] == "cat"
    assert columns["city"]["method"] in CATEGORICAL_TESTS
    assert columns["city"]["drifted"]
    assert columns["income"]["column_type"] == "num" and not columns["income"]["drifted"]
    assert set(result.prediction_shares) <= {"0", "1"}
    assert sum(result.prediction_shares.values()) == pytest.approx(1.0)

    report = drift_between(DriftSource("reference", "houses/1"), DriftSource("traffic", d.id),
                           None, settings, window_s=3600)  # fmt: skip
    assert [c.column for c in report.columns] == COLUMNS
    assert report.drifted_columns == ["city"]
    assert "city" in report._repr_html_()


def test_a_tensor_model_with_its_own_input_name_works_everywhere(
    project: dict[str, Any],
) -> None:
    settings: Settings = project["settings"]
    d = project["pixels"]
    x = np.random.default_rng(3).normal(0, 1, (120, 4)).astype(np.float32)
    status, body = _post(d.url, {"inputs": x[:60].tolist()})
    assert status == 200
    np.testing.assert_allclose(body["predictions"]["scores"], x[:60] @ W, rtol=1e-5)
    status, body = _post(d.url, {"inputs": {"pixels": x[:2].tolist()}})
    assert status == 200
    status, body = _post(d.url, {"dataframe_split": {"data": x[:2].tolist()}})
    assert status == 200 and len(body["predictions"]) == 6
    inp = httpclient.InferInput("pixels", [60, 4], "FP32")
    inp.set_data_from_numpy(x[60:])
    result = _client(d).infer("pixels", [inp])
    np.testing.assert_allclose(result.as_numpy("scores"), x[60:] @ W, rtol=1e-5)
    assert _client(d).get_model_metadata("pixels")["inputs"][0]["name"] == "pixels"
    log = wait_for_capture(d.id, settings, 124)
    assert log.attrs["inputs"] == ["f0", "f1", "f2", "f3"]
    result = monitor(d.id, "1h", act=False, settings=settings)
    assert [c["column"] for c in result.drift["columns"]] == ["f0", "f1", "f2", "f3"]
    assert sum(result.prediction_shares.values()) == pytest.approx(1.0)


def test_the_panels_drift_table_shows_names_and_column_types() -> None:
    from jupyter_mlops.widgets.drift import _columns_table

    html = _columns_table([
        {"column": "city", "column_type": "cat", "method": "chi-square p_value",
         "score": 1e-9, "threshold": 0.05, "drifted": True},
        {"column": "<income>", "column_type": "num", "method": "K-S p_value",
         "score": 0.5, "threshold": 0.05, "drifted": False},
    ])  # fmt: skip
    assert "city" in html and "categorical" in html and "numeric" in html
    assert "&lt;income&gt;" in html


_CELL = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=5),
    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
)  # fmt: skip
_NAME = st.sampled_from([*COLUMNS, "zip", "0"])


@pytest.fixture(scope="module")
def served_table(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The table model loaded as the server loads it (no MLflow signature beside it)."""
    from jupyter_mlops.serving.model import ServedVersion
    from tests.serving.tables import fit_pipeline, table_onnx

    path = tmp_path_factory.mktemp("onnx") / "model.onnx"
    path.write_bytes(table_onnx(fit_pipeline(table(200))).SerializeToString())
    return ServedVersion("1", path)


@hypothesis_settings(max_examples=300, deadline=None)
@given(
    key=st.sampled_from(["dataframe_split", "dataframe_records", "inputs", "instances"]),
    rows=st.lists(st.dictionaries(_NAME, _CELL, max_size=4), max_size=4),
)
def test_any_table_body_is_answered_or_refused_with_a_400(
    served_table: Any, key: str, rows: list[dict[str, Any]]
) -> None:
    from jupyter_mlops.serving import protocols
    from jupyter_mlops.serving.model import RequestError

    names = list(dict.fromkeys(n for row in rows for n in row))
    value: Any = rows
    if key == "dataframe_split":
        value = {"columns": names, "data": [[row.get(n) for n in names] for row in rows]}
    elif key == "inputs" and rows:
        value = {n: [row.get(n) for row in rows] for n in names}
    raw = json.dumps({key: value}).encode()
    try:
        parsed = protocols.parse(raw, JSON, served_table)
        outputs = served_table.predict(served_table.coerce(parsed.arrays))
        protocols.response(outputs, parsed.frame, served_table.class_labels, by_row=True)
    except RequestError as err:
        assert err.status == 400, err.message


def test_any_column_name_makes_a_valid_metric_key() -> None:
    from jupyter_mlops.monitoring.monitor import _metric_key

    assert _metric_key("income ($)") == "income ___"
    assert _metric_key("a/b.c-d e:f_1") == "a/b.c-d e:f_1"
