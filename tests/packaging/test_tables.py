"""Mixed-type tables: real scikit-learn pipelines through skl2onnx, real onnxruntime, a real
SQLite store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from jupyter_mlops import store
from jupyter_mlops.packaging.errors import (
    ColumnMismatchError,
    PackagingError,
    UnsupportedStepError,
)
from jupyter_mlops.packaging.package import package
from tests.conftest import runs_of_kind, settings_for

pytestmark = pytest.mark.slow

CITIES = ["Paris", "Lyon", "Nice", "Lille"]


def customers(rows: int = 400, seed: int = 0) -> pd.DataFrame:
    """A table as people keep them: strings, a category, floats with holes, integers."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "city": rng.choice(CITIES, rows),
            "plan": pd.Categorical(rng.choice(["free", "pro"], rows)),
            "age": rng.normal(40, 12, rows),
            "income": rng.normal(50_000, 12_000, rows),
            "rooms": rng.integers(1, 6, rows),
        }
    )
    frame.loc[rng.random(rows) < 0.1, "age"] = np.nan
    frame.loc[rng.random(rows) < 0.05, "income"] = np.nan
    return frame


def preprocessing(numeric_step: Any = None) -> ColumnTransformer:
    numeric = [SimpleImputer(), StandardScaler()]
    if numeric_step is not None:
        numeric.insert(1, numeric_step)
    return ColumnTransformer(
        [
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["city", "plan"]),
            ("num", make_pipeline(*numeric), ["age", "income", "rooms"]),
        ]
    )


def churn_pipeline(frame: pd.DataFrame, numeric_step: Any = None) -> Pipeline:
    target = (frame["city"].isin(["Paris", "Nice"]) ^ (frame["income"] > 50_000)).astype(int)
    model = Pipeline([("prep", preprocessing(numeric_step)), ("clf", LogisticRegression())])
    return model.fit(frame, target)


def feed(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    return {
        "city": frame[["city"]].to_numpy(object),
        "plan": frame[["plan"]].astype(str).to_numpy(object),
        "age": frame[["age"]].to_numpy(np.float32),
        "income": frame[["income"]].to_numpy(np.float32),
        "rooms": frame[["rooms"]].to_numpy(np.int64),
    }


def test_classifier_pipeline_packages_with_one_input_per_column(project: Path) -> None:
    frame = customers()
    model = churn_pipeline(frame)
    result = package(model, frame.head(40), name="churn", reference=frame)

    assert result.signature["inputs"] == [
        {"name": "city", "dtype": "string", "shape": [-1, 1]},
        {"name": "plan", "dtype": "string", "shape": [-1, 1]},
        {"name": "age", "dtype": "float32", "shape": [-1, 1]},
        {"name": "income", "dtype": "float32", "shape": [-1, 1]},
        {"name": "rooms", "dtype": "int64", "shape": [-1, 1]},
    ]
    assert [o["name"] for o in result.signature["outputs"]] == ["label", "probabilities"]
    parity = result.parity
    assert parity["passed"] and parity["max_abs_diff"] < 1e-4
    assert parity["batch_sizes"] == [40, 1, 3, 17, 17]
    assert parity["checked"] == [
        "rows resampled with noise on float columns",
        "categories resampled from those in the example",
        "missing values in age, income",
    ]

    # rows the example never held, missing values included, in a fresh onnxruntime session
    fresh = customers(50, seed=7)
    session = ort.InferenceSession(result.path, providers=["CPUExecutionProvider"])
    _, probabilities = session.run(None, feed(fresh))
    np.testing.assert_allclose(probabilities, model.predict_proba(fresh), atol=1e-5)

    import mlflow
    from mlflow.models import Model

    settings = settings_for(project)
    store.use_fluent(settings)
    info = mlflow.models.get_model_info(result.model_uri)
    assert [(c.name, c.type.name) for c in info.signature.inputs.inputs] == [
        ("city", "string"),
        ("plan", "string"),
        ("age", "double"),
        ("income", "double"),
        ("rooms", "long"),
    ]
    local = mlflow.artifacts.download_artifacts(result.model_uri, dst_path=str(project / "dl"))
    example = Model.load(local).load_input_example(local)
    assert isinstance(example, pd.DataFrame)
    assert list(example.columns) == ["city", "plan", "age", "income", "rooms"]

    client = store.client(settings)
    path = client.download_artifacts(result.run_id, "reference.parquet", str(project))
    reference = pd.read_parquet(path)
    assert list(reference.columns) == list(frame.columns)
    assert reference.dtypes.to_dict() == frame.dtypes.to_dict()
    assert len(reference) == len(frame)


def regression_data() -> tuple[pd.DataFrame, pd.Series]:
    frame = customers(300, seed=3).drop(columns=["plan"])
    rooms = frame["rooms"] * 1.5 + frame["city"].map(dict(zip(CITIES, range(4)))) * 0.7
    return frame, rooms


def test_regressor_pipeline_and_no_invented_reference(project: Path) -> None:
    frame, target = regression_data()
    prep = ColumnTransformer(
        [
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["city"]),
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), ["age", "income", "rooms"]),
        ]
    )
    model = Pipeline(
        [("prep", prep), ("forest", RandomForestRegressor(n_estimators=20, random_state=0))]
    ).fit(frame, target)
    # columns in another order than fitted: matched by name
    example = frame[["rooms", "income", "age", "city"]].head(30)
    result = package(model, example, name="rooms")

    assert [i["name"] for i in result.signature["inputs"]] == ["city", "age", "income", "rooms"]
    assert result.signature["outputs"] == [
        {"name": "variable", "dtype": "float32", "shape": [-1, 1]}
    ]
    assert result.parity["passed"] and result.parity["max_abs_diff"] < 1e-4
    artifacts = {a.path for a in store.client(settings_for(project)).list_artifacts(result.run_id)}
    assert "reference.parquet" not in artifacts and "model_card.md" in artifacts


def test_columns_that_do_not_match_the_fitted_ones(project: Path) -> None:
    frame = customers()
    model = churn_pipeline(frame)
    wrong = frame.drop(columns=["income"]).assign(zip_code="75001").head(20)
    with pytest.raises(ColumnMismatchError) as err:
        package(model, wrong, name="churn")
    assert str(err.value) == (
        "the example's columns are not the ones the pipeline was fitted on: missing "
        "['income']; not fitted on ['zip_code'] (fitted on ['city', 'plan', 'age', 'income', "
        "'rooms']); pass a DataFrame with exactly those columns"
    )
    assert (err.value.missing, err.value.extra) == (["income"], ["zip_code"])
    assert runs_of_kind(project, "package") == []


class Clip(BaseEstimator, TransformerMixin):  # type: ignore[misc]
    """A user's own transformer: skl2onnx knows no converter for it."""

    def fit(self, X: Any, y: Any = None) -> Clip:
        return self

    def transform(self, X: Any) -> Any:
        return np.clip(X, -3, 3)


def test_unsupported_transformer_is_named_with_what_to_do(project: Path) -> None:
    frame = customers()
    with pytest.raises(UnsupportedStepError) as err:
        package(churn_pipeline(frame, Clip()), frame.head(20), name="churn")
    assert str(err.value) == (
        "step 'prep > num > clip' is a tests.packaging.test_tables.Clip, which skl2onnx "
        "cannot convert to ONNX: use a transformer skl2onnx supports, or register a converter "
        "for Clip with skl2onnx.update_registered_converter() first"
    )
    assert err.value.step == "prep > num > clip"

    with pytest.raises(UnsupportedStepError) as err:
        package(churn_pipeline(frame, FunctionTransformer(np.log1p)), frame.head(20), name="c")
    assert str(err.value).startswith(
        "step 'prep > num > functiontransformer' is a FunctionTransformer of log1p: skl2onnx "
        "converts only FunctionTransformer(func=None)"
    )
    assert runs_of_kind(project, "package") == []


def test_string_column_with_missing_values_and_torch_only_arguments(project: Path) -> None:
    frame = customers()
    model = churn_pipeline(frame)
    holes = frame.head(20).copy()
    holes.loc[3, "city"] = None
    with pytest.raises(PackagingError) as err:
        package(model, holes, name="churn")
    assert str(err.value) == (
        "column 'city' (object) has missing values, which an ONNX string tensor cannot hold: "
        "fill them (e.g. with 'missing') before fitting and packaging"
    )
    with pytest.raises(PackagingError) as err:
        package(model, frame.head(20), name="churn", input_names=["a"], dynamic={"a": {1: "n"}})
    assert str(err.value).startswith("input_names, dynamic: for torch models;")
    assert runs_of_kind(project, "package") == []


def test_numeric_frame_for_an_array_model_stays_one_input(project: Path) -> None:
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=500).fit(X, y)
    result = package(model, pd.DataFrame(X[:20]), name="iris")
    assert result.signature["inputs"] == [{"name": "input", "dtype": "float32", "shape": [-1, 4]}]
    assert result.parity["passed"]


def test_column_names_that_are_no_identifiers_stay_as_they_are(project: Path) -> None:
    """skl2onnx turns "monthly income" into "monthly_income"; the package feeds, signs and
    serves a table by its own column names, so the model's inputs keep them."""
    spaced = {"income": "monthly income", "plan": "plan-type"}
    frame = customers().drop(columns="rooms").rename(columns=spaced)
    model = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [
                        ("cat", OneHotEncoder(handle_unknown="ignore"), ["city", "plan-type"]),
                        (
                            "num",
                            make_pipeline(SimpleImputer(), StandardScaler()),
                            ["age", "monthly income"],
                        ),
                    ]
                ),
            ),
            ("clf", LogisticRegression()),
        ]
    ).fit(frame, (frame["city"] == "Paris").astype(int))
    result = package(model, frame.head(40), name="spaced")

    assert result.parity["passed"]
    names = ["city", "plan-type", "age", "monthly income"]
    assert [i["name"] for i in result.signature["inputs"]] == names
    session = ort.InferenceSession(result.path, providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == names
    fresh = customers(30, seed=3).drop(columns="rooms").rename(columns=spaced)
    fed = {
        "city": fresh[["city"]].to_numpy(object),
        "plan-type": fresh[["plan-type"]].astype(str).to_numpy(object),
        "age": fresh[["age"]].to_numpy(np.float32),
        "monthly income": fresh[["monthly income"]].to_numpy(np.float32),
    }
    _, probabilities = session.run(None, fed)
    np.testing.assert_allclose(probabilities, model.predict_proba(fresh[names]), atol=1e-5)
