"""XGBoost and LightGBM through onnxmltools: real boosters, real onnxruntime, a real SQLite
store."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from jupyter_mlops.packaging.errors import PackagingError
from jupyter_mlops.packaging.package import package
from tests.conftest import runs_of_kind
from tests.packaging.test_tables import CITIES, customers, feed

xgboost = pytest.importorskip("xgboost")
lightgbm = pytest.importorskip("lightgbm")
pytest.importorskip("onnxmltools")

pytestmark = pytest.mark.slow


def churn(frame: pd.DataFrame) -> pd.Series:
    return (frame["city"].isin(["Paris", "Nice"]) ^ (frame["income"] > 50_000)).astype(int)


def numeric(rows: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, 6)).astype(np.float32)
    labels = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(int)
    return X, labels, X[:, 0] * 2 + X[:, 3] + 0.1 * rng.normal(size=rows)


def boosters() -> list[Any]:
    return [
        xgboost.XGBClassifier(n_estimators=20, max_depth=3),
        lightgbm.LGBMClassifier(n_estimators=20, verbose=-1),
    ]


def run(session: ort.InferenceSession, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, inputs), strict=True))


def test_xgboost_classifier_and_regressor_on_arrays(project: Path) -> None:
    X, labels, target = numeric()
    model = xgboost.XGBClassifier(n_estimators=20, max_depth=3).fit(X, labels)
    result = package(model, X[:30], name="xgb")
    assert result.parity["passed"] and result.parity["max_abs_diff"] < 1e-5
    assert result.parity["batch_sizes"] == [30, 1, 3, 17]
    assert result.signature["inputs"] == [{"name": "input", "dtype": "float32", "shape": [-1, 6]}]
    assert [o["name"] for o in result.signature["outputs"]] == ["label", "probabilities"]
    session = ort.InferenceSession(result.path, providers=["CPUExecutionProvider"])
    got = run(session, {"input": X[:50]})
    np.testing.assert_allclose(got["probabilities"], model.predict_proba(X[:50]), atol=1e-5)

    regressor = xgboost.XGBRegressor(n_estimators=20).fit(X, target)
    result = package(regressor, X[:30], name="xgb-reg")
    assert result.parity["passed"] and result.parity["max_abs_diff"] < 1e-4
    names = sorted(r.data.tags["mlops.model_name"] for r in runs_of_kind(project, "package"))
    assert names == ["xgb", "xgb-reg"]


@pytest.mark.parametrize("library", ["xgboost", "lightgbm"])
def test_boosters_fitted_on_a_dataframe_keep_one_input_per_column(
    project: Path, library: str
) -> None:
    X, _, target = numeric()
    frame = pd.DataFrame(X, columns=[f"m{i}" for i in range(6)])
    frame["visits"] = np.random.default_rng(1).integers(0, 9, len(frame))
    module = xgboost if library == "xgboost" else lightgbm
    cls = module.XGBRegressor if library == "xgboost" else module.LGBMRegressor
    kwargs: dict[str, Any] = {"n_estimators": 20}
    if library == "lightgbm":
        kwargs["verbose"] = -1
    model = cls(**kwargs).fit(frame, target + frame["visits"])
    result = package(model, frame.head(30), name=f"{library}-df", reference=frame)
    assert result.parity["passed"] and result.parity["max_abs_diff"] < 1e-4
    assert [(i["name"], i["dtype"]) for i in result.signature["inputs"]] == [
        *((f"m{i}", "float32") for i in range(6)),
        ("visits", "int64"),
    ]
    session = ort.InferenceSession(result.path, providers=["CPUExecutionProvider"])
    inputs = {c: frame[[c]].to_numpy(np.float32) for c in frame.columns[:6]}
    inputs["visits"] = frame[["visits"]].to_numpy(np.int64)
    got = next(iter(run(session, inputs).values())).ravel()
    np.testing.assert_allclose(got, model.predict(frame), atol=1e-4)
    # the user's model keeps its feature names (the converter worked on a copy)
    if library == "xgboost":
        assert model.get_booster().feature_names == list(frame.columns)


@pytest.mark.parametrize("index", [0, 1], ids=["xgboost", "lightgbm"])
def test_boosters_at_the_end_of_a_column_pipeline(project: Path, index: int) -> None:
    frame = customers(400)
    prep = ColumnTransformer(
        [
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["city", "plan"]),
            # trees split on raw values: an imputer leaves them as they are (a float32 scaler
            # would move values lying on a split threshold to the other side)
            ("num", SimpleImputer(), ["age", "income", "rooms"]),
        ]
    )
    # LightGBM takes a DataFrame from the transformer as well as an array
    model = Pipeline([("prep", prep), ("boost", boosters()[index])]).set_output(transform="pandas")
    model.fit(frame, churn(frame))
    result = package(model, frame.head(40), name="churn-boost")
    assert result.parity["passed"] and result.parity["max_abs_diff"] < 1e-5
    assert "categories resampled from those in the example" in result.parity["checked"]
    assert [i["name"] for i in result.signature["inputs"]] == list(frame.columns)
    session = ort.InferenceSession(result.path, providers=["CPUExecutionProvider"])
    batch = customers(25, seed=3)
    batch["city"] = [CITIES[i % len(CITIES)] for i in range(25)]
    got = run(session, feed(batch))
    np.testing.assert_allclose(got["probabilities"], model.predict_proba(batch), atol=1e-5)


@pytest.mark.parametrize(
    ("missing", "library", "cls"),
    [
        ("onnxmltools", "xgboost", "XGBClassifier"),
        ("xgboost", "xgboost", "XGBClassifier"),
        ("onnxmltools", "lightgbm", "LGBMClassifier"),
    ],
)
def test_a_missing_converter_or_library_names_the_extra(
    project: Path, monkeypatch: pytest.MonkeyPatch, missing: str, library: str, cls: str
) -> None:
    X, labels, _ = numeric()
    frame = pd.DataFrame(X, columns=[f"m{i}" for i in range(6)])
    model = getattr(sys.modules[library], cls)(n_estimators=5).fit(frame, labels)
    # a module set to None in sys.modules cannot be imported: as if it were not installed
    monkeypatch.setitem(sys.modules, missing, None)
    with pytest.raises(PackagingError) as err:
        package(model, frame.head(10), name="boost")
    assert str(err.value) == (
        f"packaging an {cls} needs {missing}, which is not installed: "
        f"pip install 'jupyter-mlops[{library}]'"
    )
    assert runs_of_kind(project, "package") == []


def test_boosting_models_cannot_be_quantized(project: Path) -> None:
    X, labels, _ = numeric()
    model = xgboost.XGBClassifier(n_estimators=5).fit(X, labels)
    with pytest.raises(PackagingError, match="a tree ensemble holds split thresholds"):
        package(model, X[:20], name="xgb", quantize=True)
    assert runs_of_kind(project, "package") == []
