"""Context columns on a real server: a column model declared with ``context: [region,
group]`` answers every table format with or without them, captures them (null where left
out), and refuses an undeclared column, a context value of an unsupported type and a
context column that is also a model input, each with a message naming it."""

from __future__ import annotations

import http.client
import io
import json
import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import pandas as pd
import pytest

from jupyter_mlops import store
from jupyter_mlops.config import load_settings
from jupyter_mlops.exceptions import ConfigError
from jupyter_mlops.serving import manager
from tests.conftest import stop_deployments, wait_for_capture
from tests.serving.tables import COLUMNS, log_table_model

pytestmark = pytest.mark.slow

JSON = "application/json"
ROWS = [["Paris", 30, 41_000.5], ["Rome", 41, 60_000.0]]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("context")
    (root / "mlops.yaml").write_text("models:\n  houses:\n    context: [region, group]\n")
    saved = {k: os.environ.pop(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
             if k in os.environ}  # fmt: skip
    settings = load_settings(root)
    store.use_fluent(settings)
    try:
        log_table_model(settings, "houses")
        d = manager.deploy("houses/1", name="ctx", settings=settings)
        yield {"settings": settings, "deployment": d, "root": root}
    finally:
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


def test_context_is_served_in_every_format_and_captured(served: dict[str, Any]) -> None:
    url = served["deployment"].url
    plain = _post(url, {"dataframe_split": {"columns": COLUMNS, "data": ROWS}})
    assert plain[0] == 200, plain
    cols = [*COLUMNS, "region", "group"]
    data = [[*r, "north", 1] for r in ROWS]
    frame = pd.DataFrame(data, columns=cols)
    parquet = io.BytesIO()
    frame.to_parquet(parquet)
    records = [dict(zip(cols, r, strict=True)) for r in data]
    by_column = {c: [r[i] for r in data] for i, c in enumerate(cols)}
    bodies = [
        ({"dataframe_split": {"columns": cols, "data": data}}, JSON),
        ({"dataframe_records": records}, JSON),
        ({"inputs": by_column}, JSON),
        ({"instances": records}, JSON),
        (frame.to_csv(index=False).encode(), "text/csv"),
        (parquet.getvalue(), "application/vnd.apache.parquet"),
        # only one of the two, and a row without it: still served, null where not sent
        ({"dataframe_records": [{**records[0], "group": None}, dict(zip(COLUMNS, ROWS[1],
                                                                       strict=True))]}, JSON),
    ]  # fmt: skip
    for body, ctype in bodies:
        assert _post(url, body, ctype) == plain, body
    v2 = {"inputs": [
        {"name": "city", "datatype": "BYTES", "shape": [2, 1], "data": ["Paris", "Rome"]},
        {"name": "age", "datatype": "INT64", "shape": [2, 1], "data": [30, 41]},
        {"name": "income", "datatype": "FP32", "shape": [2, 1], "data": [41000.5, 60000.0]},
        {"name": "region", "datatype": "BYTES", "shape": [2], "data": ["south", "south"]},
    ]}  # fmt: skip
    status, body = _post(url, v2, path="/v2/models/houses/infer")
    assert status == 200, body
    log = wait_for_capture("ctx", served["settings"], 2 * (len(bodies) + 2))
    assert log.attrs["context"] == ["region", "group"]
    assert log.attrs["inputs"] == COLUMNS  # drift's features: the model's inputs only
    assert list(log["region"]) == [None] * 2 + ["north"] * 13 + [None, "south", "south"]
    # numbers with nulls read as numbers, the nulls as NaN
    groups = log["group"]
    assert groups.isna().tolist() == [True] * 2 + [False] * 12 + [True] * 4
    assert groups[2:14].tolist() == [1] * 12


def test_bad_context_requests_and_declarations(served: dict[str, Any]) -> None:
    url = served["deployment"].url
    status, body = _post(url, {"dataframe_split": {"columns": [*COLUMNS, "regoin"],
                                                   "data": [[*ROWS[0], "north"]]}})  # fmt: skip
    assert status == 400 and body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert body["message"] == (
        "Model got unexpected inputs ['regoin']. The model takes the columns "
        "['city', 'age', 'income']."
    )
    row = dict(zip(COLUMNS, ROWS[0], strict=True))
    status, body = _post(url, {"dataframe_records": [row, {**row, "region": {"x": 1}}]})
    assert status == 400
    assert body["message"] == (
        "context column 'region': row 1 is {'x': 1} (dict); a context value must be a "
        "string, a number, true/false or null"
    )
    status, body = _post(url, {"inputs": {**{c: [v] for c, v in row.items()}, "group": [[1, 2]]}})
    assert status == 400 and "context column 'group': row 0 is [1, 2] (list)" in body["message"]

    settings = served["settings"]
    root = served["root"]
    (root / "mlops.yaml").write_text("models:\n  houses:\n    context: [region, city]\n")
    with pytest.raises(manager.DeploymentError, match=(
        r"context column 'city' of model 'houses' \(models\.houses\.context in mlops\.yaml\) "
        r"is also an input of the model: the model takes \['city', 'age', 'income'\]"
    )):  # fmt: skip
        manager.deploy("houses/1", name="clash", settings=load_settings(root))
    for text, message in (
        ("context: [time]", r"models\.houses\.context: 'time' cannot be a context column"),
        ("context: [a, a]", r"models\.houses\.context: column 'a' is named twice"),
        ("context: {a: 1}", r"models\.houses\.context: must be a list of column names"),
    ):
        (root / "mlops.yaml").write_text(f"models:\n  houses:\n    {text}\n")
        with pytest.raises(ConfigError, match=message):
            manager.deploy("houses/1", name="bad", settings=load_settings(root))
    (root / "mlops.yaml").write_text("models:\n  houses:\n    context: [region, group]\n")
    assert settings.project_dir == root
