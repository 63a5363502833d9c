"""A model of a mixed-type table: a scikit-learn pipeline with a ``ColumnTransformer``,
packaged by ``package()`` from a DataFrame example: one ONNX input per column (``[None, 1]``:
string, int64, float32), ``label`` and ``probabilities`` outputs (no ZipMap), a column
signature, and ``reference.parquet`` with the real names and dtypes. ``table_onnx`` converts
it directly (for tests that load the ONNX file without MLflow)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from jupyter_mlops.config import Settings
from jupyter_mlops.registry.service import register

COLUMNS = ["city", "age", "income"]
CITIES = ["Paris", "Rome", "Oslo", "Lima"]


def table(rows: int, seed: int = 0, city_p: list[float] | None = None) -> pd.DataFrame:
    """Rows of the table: a string, an integer and a float column."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "city": rng.choice(CITIES, rows, p=city_p),
            "age": rng.integers(18, 80, rows).astype(np.int64),
            "income": rng.normal(50_000, 15_000, rows),
        }
    )


def fit_pipeline(frame: pd.DataFrame) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    labels = ((frame["city"] == "Paris") | (frame["income"] > 55_000)).astype(int)
    prep = ColumnTransformer(
        [
            ("city", OneHotEncoder(handle_unknown="ignore"), ["city"]),
            ("age", StandardScaler(), ["age"]),
            ("income", Pipeline([("fill", SimpleImputer()), ("scale", StandardScaler())]),
             ["income"]),
        ]
    )  # fmt: skip
    return Pipeline([("prep", prep), ("clf", LogisticRegression())]).fit(frame, labels)


def table_onnx(pipeline: Any) -> Any:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, Int64TensorType, StringTensorType

    types = [("city", StringTensorType([None, 1])), ("age", Int64TensorType([None, 1])),
             ("income", FloatTensorType([None, 1]))]  # fmt: skip
    options = {id(pipeline.steps[-1][1]): {"zipmap": False}}
    return convert_sklearn(pipeline, initial_types=types, options=options, target_opset=17)


def log_table_model(settings: Settings, name: str) -> tuple[Any, pd.DataFrame]:
    """Fit, package and register the model as version 1 of ``name``; the fitted pipeline
    and its training table (also the reference sample)."""
    from jupyter_mlops import package

    frame = table(2000)
    pipeline = fit_pipeline(frame)
    packaged = package(pipeline, frame.head(16), name=name, reference=frame, settings=settings)
    register(packaged.model_uri, name, settings=settings)
    return pipeline, frame
