"""The standard digits pipeline in templates/, end to end, on a fresh project."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from jupyter_mlops import store
from jupyter_mlops.pipelines.runner import PipelineFailed, run_pipeline
from jupyter_mlops.serving.manager import deployments, undeploy
from tests.conftest import drain, runs_of_kind, settings_for

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"

pytestmark = pytest.mark.slow


@pytest.mark.timeout(900)  # eight steps in kernels, two model servers, on a busy machine
def test_standard_pipeline_trains_evaluates_and_gates(project: Path) -> None:
    shutil.copytree(TEMPLATES, project / "templates")
    path = project / "templates" / "pipeline.yaml"
    try:
        result = run_pipeline(path, {"epochs": "4"}, parallel=2, progress=False)
    finally:
        for d in deployments():
            if d.status == "running":
                undeploy(d.id)
    assert [s.status for s in result.steps.values()] == ["FINISHED"] * 8
    assert result.steps["monitor"].outputs == {"status": "no traffic", "share_drifted": 0.0}
    ingest = result.steps["ingest"].outputs
    assert ingest["n_train"] == 1437
    assert (project / ingest["train_path"]).is_file()
    assert Path(ingest["train_path"]).name.startswith("digits-train-")
    assert result.steps["validate"].outputs == {"rows_checked": 1797}
    accuracy = result.steps["evaluate"].outputs["test_accuracy"]
    assert 0.8 < accuracy <= 1.0
    assert result.steps["package"].outputs["parity_max_abs_diff"] < 1e-4
    assert result.steps["register"].outputs == {"version": 1, "promoted": True}
    deployed = result.steps["deploy"].outputs
    assert deployed["released_version"] == 1
    assert deployed["endpoint"].startswith("http://127.0.0.1:")
    assert [(d.id, d.status) for d in deployments()] == [
        ("digits-candidate", "stopped"),
        ("digits-prod", "stopped"),
    ]

    drain(project)
    client = store.client(settings_for(project))
    staging = client.get_model_version_by_alias("digits", "staging")
    assert str(staging.version) == "1"
    assert str(client.get_model_version_by_alias("digits", "champion").version) == "1"
    [package_run] = runs_of_kind(project, "package")
    assert package_run.data.tags["mlflow.parentRunId"] == result.steps["package"].run_id
    assert package_run.data.metrics["test_accuracy"] == accuracy
    train_step = result.steps["train"].run_id
    train_cells = [
        c for c in runs_of_kind(project, "cell") if c.data.tags["mlflow.parentRunId"] == train_step
    ]
    history = [
        m for c in train_cells for m in client.get_metric_history(c.info.run_id, "train_loss")
    ]
    assert sorted(m.step for m in history) == [0, 1, 2, 3]
    ingest_cells = [
        c
        for c in runs_of_kind(project, "cell")
        if c.data.tags["mlflow.parentRunId"] == result.steps["ingest"].run_id
    ]
    datasets = {d.dataset.name for c in ingest_cells for d in c.inputs.dataset_inputs}
    assert {"digits", "train_df", "test_df"} <= datasets

    # a stricter gate re-runs only evaluate, and stops the pipeline with its reason
    with pytest.raises(PipelineFailed) as err:
        run_pipeline(path, {"epochs": "4", "min_accuracy": "0.9999"}, progress=False)
    statuses = {n: s.status for n, s in err.value.result.steps.items()}
    assert statuses == {
        "ingest": "CACHED",
        "validate": "CACHED",
        "train": "CACHED",
        "evaluate": "FAILED",
        "package": "SKIPPED",
        "register": "SKIPPED",
        "deploy": "SKIPPED",
        "monitor": "SKIPPED",
    }
    assert "is below min_accuracy 0.9999" in str(err.value)


def test_validation_stops_bad_data(project: Path) -> None:
    shutil.copytree(TEMPLATES, project / "templates")
    with pytest.raises(PipelineFailed) as err:
        # a class share no split of ten digits can meet
        _run_with_strict_validation(project)
    assert "data validation failed" in str(err.value)
    assert "(min 50.0%)" in str(err.value)
    assert err.value.result.steps["train"].status == "SKIPPED"


def _run_with_strict_validation(project: Path) -> None:
    path = project / "templates" / "pipeline.yaml"
    text = path.read_text().replace(
        "      test_path: ${steps.ingest.test_path}\n    outputs: [rows_checked]",
        "      test_path: ${steps.ingest.test_path}\n      min_class_share: 0.5\n"
        "    outputs: [rows_checked]",
    )
    path.write_text(text)
    run_pipeline(path, {"epochs": "1"}, progress=False)
