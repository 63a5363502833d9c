"""evaluate() on real packaged ONNX models and a real torch module, into a real store."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference
from sklearn.datasets import load_iris
from sklearn.metrics import accuracy_score
from torch import nn

import jupyter_mlops
from jupyter_mlops import store
from jupyter_mlops.analysis.evaluate import EvaluationResult
from jupyter_mlops.config import load_settings
from tests.analysis.conftest import FEATURES, Cancer

pytestmark = pytest.mark.slow


def test_a_packaged_model_gets_metrics_slices_fairness_and_attributions(cancer: Cancer) -> None:
    (cancer.root / "mlops.yaml").write_text("models:\n  cancer:\n    slices: [size]\n")
    table = cancer.table
    result = jupyter_mlops.evaluate(cancer.packaged, table, target="target")

    predicted = cancer.estimator.predict(table[FEATURES])
    assert result.task == "classifier"
    assert result.rows == len(table)
    assert result.metrics["accuracy_score"] == pytest.approx(
        accuracy_score(table["target"], predicted)
    )
    assert 0.5 < result.metrics["roc_auc"] <= 1
    # the slices come from mlops.yaml; each group's accuracy as pandas counts it
    by_hand = (
        pd.Series(predicted == table["target"].to_numpy()).groupby(table["size"].to_numpy()).mean()
    )
    worst = result.worst_slices["accuracy"]
    assert (worst["column"], worst["group"]) == ("size", by_hand.idxmin())
    assert worst["value"] == pytest.approx(by_hand.min())
    assert worst["count"] == int((table["size"] == by_hand.idxmin()).sum())
    assert result.metrics["slice_min_accuracy"] == pytest.approx(by_hand.min())
    assert result.slices["size"]["accuracy"] == pytest.approx(by_hand.to_dict())
    expected_dpd = demographic_parity_difference(
        table["target"], predicted, sensitive_features=table["size"]
    )
    expected_eod = equalized_odds_difference(
        table["target"], predicted, sensitive_features=table["size"]
    )
    assert result.fairness["demographic_parity_difference"] == pytest.approx(expected_dpd)
    assert result.fairness["equalized_odds_difference"] == pytest.approx(expected_eod)
    # the pure-noise column moves the answers least; the model never saw the group column
    assert set(result.importance) == set(FEATURES)
    assert list(result.importance)[-1] == "noise"
    assert result.explainer == "shap-kernel"

    client = store.client(load_settings(cancer.root))
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["mlops.kind"] == "evaluation"
    assert run.data.tags["mlops.evaluated_run_id"] == cancer.packaged.run_id
    assert run.data.metrics["fairness_demographic_parity_difference"] == pytest.approx(expected_dpd)
    assert run.data.metrics["slice_min_accuracy"] == pytest.approx(by_hand.min())
    assert run.data.metrics["accuracy_score"] == pytest.approx(result.metrics["accuracy_score"])
    logged = {a.path for a in client.list_artifacts(result.run_id)}
    logged |= {
        a.path for d in ("charts", "explanations") for a in client.list_artifacts(result.run_id, d)
    }
    for path in (
        "evaluation.html",
        "slices.json",
        "charts/importance.json",
        "charts/curves.json",
        "charts/slices.json",
        "explanations/importance.json",
        "explanations/attributions.csv",
    ):
        assert path in logged, path
    assert any("confusion_matrix" in p for p in logged)
    local = Path(client.download_artifacts(result.run_id, "explanations/attributions.csv"))
    attributions = pd.read_csv(local, index_col=0)
    assert list(attributions.columns) == FEATURES
    assert 1 < len(attributions) <= 150
    figure = json.loads(
        Path(client.download_artifacts(result.run_id, "charts/importance.json")).read_text()
    )
    assert figure["data"][0]["type"] == "bar"
    page = Path(client.download_artifacts(result.run_id, "evaluation.html")).read_text()
    assert "plotly" in page.lower() and "<script src=" not in page  # plotly.js inlined: offline
    # a plain dataclass, the same object every door renders
    again = EvaluationResult(**json.loads(json.dumps(result.to_dict())))
    assert again == result
    assert "worst slice on accuracy: size=" in result.summary()


def test_slices_passed_by_argument_and_explanations_off(cancer: Cancer) -> None:
    (cancer.root / "mlops.yaml").write_text("")
    table = cancer.table.assign(band=pd.qcut(cancer.table["mean_texture"], 3, labels=False))
    result = jupyter_mlops.evaluate(
        cancer.packaged.model_uri, table, target="target", slices=["band"], explain=False
    )
    assert set(result.slices["band"]["accuracy"]) == {"0", "1", "2"}
    assert result.importance == {} and result.explainer is None
    assert not any(a.startswith("explanations/") for a in result.artifacts)


def test_a_torch_module_is_explained_with_captum(project: Path) -> None:
    iris = load_iris(as_frame=True)
    frame = iris.data.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    X = torch.tensor(frame.to_numpy(), dtype=torch.float32)
    y = torch.tensor(iris.target.to_numpy())
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(150):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(X), y).backward()
        optimizer.step()
    with torch.no_grad():
        predicted = model(X).argmax(dim=1).numpy()
    table = frame.assign(
        target=iris.target, wide=np.where(frame["sepal_width"] > 3.0, "wide", "narrow")
    )
    result = jupyter_mlops.evaluate(model, table, target="target", slices=["wide"])

    assert result.explainer == "captum-integrated-gradients"
    assert result.metrics["accuracy_score"] == pytest.approx(accuracy_score(iris.target, predicted))
    assert result.metrics["accuracy_score"] > 0.9
    assert "roc_auc" in result.metrics  # one-vs-rest over the three classes
    # iris is told apart by its petals
    assert set(list(result.importance)[:2]) == {"petal_length", "petal_width"}
    # multiclass disparity: the worst one-vs-rest difference over the classes
    worst = max(
        demographic_parity_difference(
            iris.target == c, predicted == c, sensitive_features=table["wide"]
        )
        for c in range(3)
    )
    assert result.fairness["demographic_parity_difference"] == pytest.approx(worst)


def test_a_regressor_gets_error_metrics_per_slice_and_no_disparities(project: Path) -> None:
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    data = load_diabetes(as_frame=True)
    model = Ridge().fit(data.data.to_numpy(), data.target)
    packaged = jupyter_mlops.package(model, data.data.to_numpy()[:20], name="diabetes")
    table = data.data.assign(target=data.target, older=np.where(data.data["age"] > 0, "yes", "no"))
    result = jupyter_mlops.evaluate(packaged, table, target="target", slices=["older"])

    assert result.task == "regressor"
    errors = pd.Series(np.abs(model.predict(data.data.to_numpy()) - data.target.to_numpy()))
    by_group = errors.groupby(table["older"].to_numpy()).mean()
    assert result.worst_slices["mae"]["group"] == by_group.idxmax()  # the highest error
    assert result.metrics["slice_max_mae"] == pytest.approx(by_group.max(), rel=1e-5)
    assert result.metrics["mean_absolute_error"] == pytest.approx(errors.mean(), rel=1e-5)
    assert result.fairness == {}
    assert next(iter(result.importance)) in ("bmi", "s5")
