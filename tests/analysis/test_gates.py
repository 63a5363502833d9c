"""Fairness and slice gates at promotion, read from real evaluation runs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from jupyter_mlops import evaluate, store
from jupyter_mlops.config import load_settings
from jupyter_mlops.exceptions import ConfigError
from jupyter_mlops.packaging.package import package
from jupyter_mlops.registry.service import PromotionRefused, promote, register
from tests.analysis.conftest import FEATURES, Cancer

pytestmark = pytest.mark.slow

GATES = """\
models:
  cancer:
    slices: [size]
registry:
  gates:
    champion:
      fairness: {demographic_parity_difference: "<= 0.1"}
      slices: {accuracy: ">= 0.99"}
"""
NO_EVALUATION = (
    "no evaluation of this version was recorded: run jupyter_mlops.evaluate(model_uri, data, "
    "target=...) with slice columns (mlops.yaml models.<name>.slices, or slices=[...])"
)


def test_a_refusal_names_the_slice_and_the_numbers(cancer: Cancer) -> None:
    (cancer.root / "mlops.yaml").write_text(GATES)
    version = register(cancer.packaged).version
    with pytest.raises(PromotionRefused) as err:
        promote("cancer", version)
    assert f"  - fairness demographic_parity_difference <= 0.1: {NO_EVALUATION}" in str(err.value)
    assert f"  - every slice accuracy >= 0.99: {NO_EVALUATION}" in str(err.value)

    result = evaluate(f"models:/cancer/{version}", cancer.table, target="target")
    assert result.version == version
    dpd = result.fairness["demographic_parity_difference"]
    worst = result.worst_slices["accuracy"]
    assert dpd > 0.1 and worst["value"] < 0.99  # this model is refused on both
    with pytest.raises(PromotionRefused) as err:
        promote("cancer", version)
    message = str(err.value)
    assert (
        f"  - fairness demographic_parity_difference <= 0.1: demographic_parity_difference = "
        f"{dpd:.6g} (evaluation run {result.run_id})"
    ) in message
    assert (
        f"  - every slice accuracy >= 0.99: worst slice size={worst['group']}: accuracy = "
        f"{worst['value']:.6g}, {worst['count']} rows (evaluation run {result.run_id})"
    ) in message

    # thresholds it meets, in mlops.yaml's shape; the worst slice must pass, not the average
    loose = {
        "fairness": {"demographic_parity_difference": f"<= {dpd + 0.01:.4f}"},
        "slices": {"accuracy": f">= {worst['value'] - 0.01:.4f}", "f1": "> 0.5"},
    }
    passed = promote("cancer", version, gates=loose)
    assert passed.verdict == "passed"
    assert [g.gate for g in passed.gates] == [
        f"fairness demographic_parity_difference <= {dpd + 0.01:.4g}",
        f"every slice accuracy >= {worst['value'] - 0.01:.4g}",
        "every slice f1 > 0.5",
    ]
    best = result.slices["size"]["accuracy"]
    tight = {"slices": {"accuracy": f">= {(min(best.values()) + max(best.values())) / 2:.4f}"}}
    with pytest.raises(PromotionRefused, match=f"worst slice size={worst['group']}"):
        promote("cancer", version, "staging", gates=tight)
    # the refusal is recorded on the version, as every verdict is
    client = store.client(load_settings(cancer.root))
    tags = client.get_model_version("cancer", version).tags
    assert '"verdict": "refused"' in tags["mlops.gate.staging"]


def test_a_gate_on_a_metric_never_computed(cancer: Cancer) -> None:
    (cancer.root / "mlops.yaml").write_text("")
    other = make_pipeline(StandardScaler(), LogisticRegression(C=0.1)).fit(
        cancer.table[FEATURES], cancer.table["target"]
    )
    packaged = package(other, cancer.table[FEATURES].head(20), name="cancer-plain")
    version = register(packaged).version
    result = evaluate(packaged, cancer.table, target="target", explain=False)
    assert result.fairness == {} and result.slices == {}
    gates = {
        "fairness": {"equalized_odds_difference": "<= 0.2"},
        "slices": {"mae": "<= 1"},
    }
    with pytest.raises(PromotionRefused) as err:
        promote("cancer-plain", version, gates=gates)
    assert (
        f"  - fairness equalized_odds_difference <= 0.2: evaluation run {result.run_id} "
        "computed no equalized_odds_difference: it had no slice columns (mlops.yaml "
        "models.<name>.slices, or slices=[...]) or the model is no classifier"
    ) in str(err.value)
    assert (
        f"  - every slice mae <= 1: evaluation run {result.run_id} computed no per-slice mae"
    ) in str(err.value)

    with pytest.raises(ConfigError) as bad:
        promote("cancer-plain", version, gates={"fairness": {"demographic_parity": "<= 0.1"}})
    assert str(bad.value) == (
        "promote(gates=...) for 'champion': fairness: unknown metric 'demographic_parity' "
        "(known: demographic_parity_difference, equalized_odds_difference)"
    )
    with pytest.raises(ConfigError, match=r"slices\.accuracy: threshold 'high'"):
        promote("cancer-plain", version, gates={"slices": {"accuracy": "high"}})


def test_a_pipeline_evaluation_before_packaging_is_the_versions_evidence(
    cancer: Cancer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The standard pipeline evaluates the trained torch module, then packages it in a later
    step: the gate finds the evaluation through the pipeline run."""
    (cancer.root / "mlops.yaml").write_text("")
    settings = load_settings(cancer.root)
    client = store.client(settings)
    experiment = store.get_or_create_experiment(settings, "cancer-pipeline")
    pipeline = client.create_run(experiment, tags={"mlops.kind": "pipeline"}).info.run_id
    steps = {
        name: client.create_run(
            experiment,
            tags={"mlops.kind": "step", "mlflow.parentRunId": pipeline},
            run_name=name,
        ).info.run_id
        for name in ("evaluate", "package")
    }
    table = cancer.table
    X = torch.tensor(table[FEATURES].to_numpy(), dtype=torch.float32)
    X = (X - X.mean(dim=0)) / X.std(dim=0)
    scaled = table.assign(**{c: X[:, i].numpy() for i, c in enumerate(FEATURES)})
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(len(FEATURES), 8), nn.ReLU(), nn.Linear(8, 2))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    y = torch.tensor(table["target"].to_numpy())
    for _ in range(100):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(X), y).backward()
        optimizer.step()

    monkeypatch.setenv("JUPYTER_MLOPS_SESSION_RUN_ID", steps["evaluate"])
    result = evaluate(model, scaled, target="target", slices=["size"], explain=False)
    monkeypatch.setenv("JUPYTER_MLOPS_SESSION_RUN_ID", steps["package"])
    packaged = package(model, X[:16], name="cancer-mlp")
    monkeypatch.delenv("JUPYTER_MLOPS_SESSION_RUN_ID")
    tags = client.get_run(result.run_id).data.tags
    assert tags["mlflow.parentRunId"] == steps["evaluate"]
    assert tags["mlops.pipeline_run_id"] == pipeline

    version = register(packaged).version
    worst = result.worst_slices["accuracy"]
    with pytest.raises(PromotionRefused) as err:
        promote("cancer-mlp", version, gates={"slices": {"accuracy": "> 0.999"}})
    assert (
        f"worst slice size={worst['group']}: accuracy = {worst['value']:.6g}, "
        f"{worst['count']} rows (evaluation run {result.run_id})"
    ) in str(err.value)
    assert np.isclose(result.metrics["slice_min_accuracy"], worst["value"])
