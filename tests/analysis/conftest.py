"""Real models on scikit-learn's bundled data, packaged to ONNX into a real SQLite store."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from jupyter_mlops import store
from jupyter_mlops.packaging.package import PackagedModel, package
from tests.conftest import ENV_KEYS

FEATURES = ["mean_radius", "mean_texture", "mean_smoothness", "mean_concavity", "noise"]


def cancer_table() -> pd.DataFrame:
    """Breast cancer data: a few features, a pure-noise one, the target and a group column
    (tumour size above or below the median area) the model never sees."""
    data = load_breast_cancer(as_frame=True)
    frame = data.data.rename(columns=lambda c: c.replace(" ", "_"))
    table = frame[FEATURES[:-1]].copy()
    table["noise"] = np.random.default_rng(0).normal(size=len(table))
    table["size"] = np.where(frame["mean_area"] > frame["mean_area"].median(), "large", "small")
    table["target"] = data.target
    return table


@dataclass
class Cancer:
    root: Path
    table: pd.DataFrame
    estimator: Any
    packaged: PackagedModel


def _project(root: Path, mp: pytest.MonkeyPatch) -> None:
    root.mkdir()
    (root / "mlops.yaml").write_text("")
    for key in ENV_KEYS:
        mp.delenv(key, raising=False)
    mp.chdir(root)


@pytest.fixture(scope="module")
def cancer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cancer]:
    """One project per test module, with the cancer model packaged by column."""
    with pytest.MonkeyPatch.context() as mp:
        root = tmp_path_factory.mktemp("analysis") / "project"
        _project(root, mp)
        table = cancer_table()
        estimator = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
        estimator.fit(table[FEATURES], table["target"])
        packaged = package(estimator, table[FEATURES].head(20), name="cancer")
        yield Cancer(root, table, estimator, packaged)
        store.forget_clients()
