"""The standard pipeline's evaluate step, run alone through the pipeline runner: its
outputs are unchanged and its step run gets the evaluation run with the attributions."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

from jupyter_mlops import store
from jupyter_mlops.pipelines.runner import run_pipeline
from tests.conftest import drain, runs_of_kind, settings_for

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"

pytestmark = pytest.mark.slow


def test_the_evaluate_step_records_an_evaluation_of_the_trained_model(project: Path) -> None:
    digits = load_digits(as_frame=True)
    frame = digits.frame.rename(columns=str)
    test = frame.sample(300, random_state=0)
    train = frame.drop(test.index)
    X = torch.tensor(train.drop(columns="target").to_numpy() / 16.0, dtype=torch.float32)
    y = torch.tensor(train["target"].to_numpy())
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(60):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(X), y).backward()
        optimizer.step()
    buffer = io.BytesIO()
    torch.save({"state_dict": model.state_dict(), "hidden": 32, "n_features": 64}, buffer)
    (project / "model.pt").write_bytes(buffer.getvalue())
    test.to_parquet(project / "test.parquet")
    shutil.copy(TEMPLATES / "evaluate.ipynb", project / "evaluate.ipynb")
    (project / "pipeline.yaml").write_text(
        "name: evaluate-only\nsteps:\n  evaluate:\n    notebook: evaluate.ipynb\n"
        "    params: {model_path: model.pt, test_path: test.parquet, min_accuracy: 0.5,"
        " explain_rows: 40}\n"
        "    outputs: [test_accuracy, test_f1]\n"
    )

    result = run_pipeline(project / "pipeline.yaml", progress=False)

    step = result.steps["evaluate"]
    assert step.status == "FINISHED"
    assert set(step.outputs) == {"test_accuracy", "test_f1"}
    drain(project)
    [evaluation] = runs_of_kind(project, "evaluation")
    assert evaluation.data.tags["mlflow.parentRunId"] == step.run_id
    assert evaluation.data.tags["mlops.pipeline_run_id"] == result.run_id
    assert evaluation.data.tags["mlops.model_name"] == "digits"
    metrics = evaluation.data.metrics
    assert metrics["accuracy_score"] == pytest.approx(step.outputs["test_accuracy"])
    assert 0 < metrics["roc_auc"] <= 1
    client = store.client(settings_for(project))
    importance = client.download_artifacts(evaluation.info.run_id, "explanations/importance.json")
    text = Path(importance).read_text()
    assert '"method": "captum-integrated-gradients"' in text
    assert '"rows": 40' in text
