"""Quality against labels: Evidently's numbers, the policy's thresholds, and monitor() acting
on them against a real deployed classifier."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from jupyter_mlops import store
from jupyter_mlops.config import Settings, load_settings
from jupyter_mlops.exceptions import ConfigError
from jupyter_mlops.monitoring.labels import log_labels
from jupyter_mlops.monitoring.monitor import alerts, load_policy, monitor
from jupyter_mlops.monitoring.quality import classification_quality, regression_quality
from jupyter_mlops.serving import manager
from tests.conftest import runs_of_kind, wait_for_capture
from tests.monitoring.iris import register_iris, send_named, split
from tests.pipelines.helpers import pipeline_file, step_notebook


def _preset(frame: pd.DataFrame, task: str) -> dict[str, object]:
    """Evidently's own report on the same data: metric name -> value."""
    from evidently import (
        BinaryClassification,
        DataDefinition,
        Dataset,
        MulticlassClassification,
        Regression,
        Report,
    )
    from evidently.presets import ClassificationPreset, RegressionPreset

    if task == "regression":
        definition = DataDefinition(regression=[Regression(target="target", prediction="pred")])
        preset: object = RegressionPreset()
    else:
        kind = BinaryClassification if frame["target"].nunique() == 2 else MulticlassClassification
        definition = DataDefinition(
            classification=[kind(target="target", prediction_labels="pred")]
        )
        preset = ClassificationPreset()
    snap = Report([preset]).run(Dataset.from_pandas(frame, data_definition=definition), None)
    return {m["metric_name"].split("(")[0]: m["value"] for m in snap.dict()["metrics"]}


@pytest.mark.parametrize("dataset", ["digits", "breast_cancer"])
def test_classification_numbers_are_evidentlys(dataset: str) -> None:
    from sklearn import datasets
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = getattr(datasets, f"load_{dataset}")(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.5, random_state=0)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    pred = model.fit(x_train, y_train).predict(x_test)
    ours = classification_quality(pd.Series(y_test), pd.Series(pred))
    theirs = _preset(pd.DataFrame({"target": y_test, "pred": pred}), "classification")
    for ours_name, their_name in (
        ("accuracy", "Accuracy"),
        ("f1", "F1Score"),
        ("precision", "Precision"),
        ("recall", "Recall"),
    ):
        assert ours.metrics[ours_name] == pytest.approx(theirs[their_name])
    for cls, values in ours.per_class.items():
        assert values["precision"] == pytest.approx(theirs["PrecisionByLabel"][int(cls)])
        assert values["recall"] == pytest.approx(theirs["RecallByLabel"][int(cls)])
    matrix = np.array(ours.confusion_matrix["values"])
    assert matrix.sum() == len(y_test) and np.trace(matrix) == (pred == y_test).sum()


def test_regression_numbers_are_evidentlys() -> None:
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    x, y = load_diabetes(return_X_y=True)
    pred = Ridge().fit(x[:300], y[:300]).predict(x[300:])
    ours = regression_quality(pd.Series(y[300:]), pd.Series(pred))
    theirs = _preset(pd.DataFrame({"target": y[300:], "pred": pred}), "regression")
    assert ours.metrics["rmse"] == pytest.approx(theirs["RMSE"])
    assert ours.metrics["r2"] == pytest.approx(theirs["R2Score"])
    mae = theirs["MAE"]
    assert ours.metrics["mae"] == pytest.approx(mae["mean"] if isinstance(mae, dict) else mae)


def test_policy_refuses_unknown_and_bad_quality_keys(project: Path) -> None:
    root = project
    for text, message in (
        ("quality: {auc_drop: 0.1}", r"monitoring\.quality: unknown key 'auc_drop'"),
        ("quality: {accuracy_drop: -1}", r"monitoring\.quality\.accuracy_drop: must be a number"),
        ("quality: {min_labels: 0}", r"monitoring\.quality\.min_labels: must be a whole number"),
        ("quality: [accuracy_drop]", r"monitoring\.quality: expected a mapping"),
    ):
        (root / "mlops.yaml").write_text(f"monitoring:\n  {text}\n")
        with pytest.raises(ConfigError, match=message):
            load_policy(load_settings(root))
    (root / "mlops.yaml").write_text("monitoring:\n  quality: {accuracy_drop: 0.1, mae_rise: 2}\n")
    policy = load_policy(load_settings(root))
    assert policy.quality.thresholds == {"accuracy_drop": 0.1, "mae_rise": 2.0}


def _policy(settings: Settings, text: str) -> Settings:
    (settings.project_dir / "mlops.yaml").write_text(text)
    return load_settings(settings.project_dir)


@pytest.mark.slow
def test_quality_falls_with_disagreeing_labels_and_the_policy_rolls_back(
    iris_project: Settings,
) -> None:
    settings = _policy(
        iris_project,
        "monitoring:\n  drift_share: 1.0\n  actions: [alert, rollback]\n"
        "  quality: {accuracy_drop: 0.1}\n",
    )
    _, x_test, _, y_test = split()
    d = manager.deploy("iris@champion", name="prod", follow=True, settings=settings)
    ids = send_named(d.url, x_test, "r", batch=5)
    wait_for_capture("prod", settings, len(ids))
    no_labels = monitor("prod", "1h", settings=settings)
    assert no_labels.quality is None and not no_labels.triggered
    # labels arrive late: the first half agrees with the truth
    log_labels("prod", ids[:30], y_test[:30].tolist(), settings=settings)
    calm = monitor("prod", "1h", settings=settings)
    assert not calm.triggered, calm.summary()
    assert calm.quality is not None and calm.quality["rows"] == 30
    assert calm.quality["metrics"]["accuracy"] >= 0.9
    assert calm.quality["baseline"]["accuracy"] >= 0.9  # v2's test_accuracy
    # then labels that disagree with what the model said
    wrong = ((y_test[30:] + 1) % 3).tolist()
    log_labels("prod", ids[30:], wrong, settings=settings)
    hot = monitor("prod", "1h", settings=settings)
    assert hot.quality is not None and hot.quality["rows"] == len(ids)
    assert hot.quality["metrics"]["accuracy"] < 0.6
    assert hot.triggered and hot.actions == ["alert", "rollback iris@champion v2 -> v1"]
    assert hot.reasons[0].startswith("accuracy fell by"), hot.reasons
    assert "quality over 60 labelled rows: accuracy" in hot.summary()
    client = store.client(settings)
    assert str(client.get_model_version_by_alias("iris", "champion").version) == "1"
    assert manager.get_deployment("prod", settings=settings).weights == {"1": 1.0}
    run = client.get_run(hot.run_id)
    assert run.data.metrics["quality.accuracy"] == pytest.approx(hot.quality["metrics"]["accuracy"])
    assert run.data.metrics["quality.labelled_rows"] == 60
    assert "quality.version.accuracy" in run.data.metrics
    assert "quality.recall.0" in run.data.metrics
    assert json.loads(run.data.tags["mlops.alert_reasons"]) == hot.reasons
    assert "quality.json" in {a.path for a in client.list_artifacts(hot.run_id)}
    [alert] = alerts(settings=settings)
    assert alert["reasons"] == hot.reasons and alert["run_id"] == hot.run_id


@pytest.mark.slow
def test_retrain_gets_the_labelled_window(iris_project: Settings) -> None:
    root = iris_project.project_dir
    step_notebook(
        root / "retrain.ipynb",
        'labelled_window = ""',
        "import pandas as pd\nimport jupyter_mlops\n"
        'jupyter_mlops.output("rows", len(pd.read_parquet(labelled_window)))',
    )
    pipeline_file(
        root / "retrain.yaml",
        {
            "name": "retrain",
            "params": {"labelled_window": ""},
            "steps": {
                "s": {
                    "notebook": "retrain.ipynb",
                    "params": {"labelled_window": "${params.labelled_window}"},
                    "outputs": ["rows"],
                }
            },
        },
    )
    settings = _policy(
        iris_project,
        "monitoring:\n  drift_share: 1.0\n  actions: [alert, retrain]\n"
        "  retrain_pipeline: retrain.yaml\n  quality: {accuracy_drop: 0.1}\n",
    )
    _, x_test, _, y_test = split()
    d = manager.deploy("iris@champion", name="prod", settings=settings)
    ids = send_named(d.url, x_test[:40], "w", batch=4)
    wait_for_capture("prod", settings, 40)
    log_labels("prod", ids, ((y_test[:40] + 1) % 3).tolist(), settings=settings)
    result = monitor("prod", "1h", settings=settings)
    assert result.actions[0] == "alert"
    assert result.actions[1].startswith("retrain FINISHED (pipeline run "), result.actions
    pipeline_run = result.actions[1].rsplit(" ", 1)[1].rstrip(")")
    run = store.client(settings).get_run(pipeline_run)
    [given] = run.inputs.dataset_inputs
    assert given.dataset.name == "labelled_window"
    assert json.loads(given.dataset.profile)["num_rows"] == 40
    [step] = runs_of_kind(root, "step", "retrain")
    assert json.loads(step.data.tags["mlops.outputs"])["rows"] == 40


@pytest.mark.slow
def test_thresholds_that_cannot_be_judged(iris_project: Settings) -> None:
    _, x_test, _, y_test = split()
    d = manager.deploy("iris/2", name="p", settings=iris_project)
    ids = send_named(d.url, x_test[:20], "b")
    wait_for_capture("p", iris_project, 20)
    log_labels("p", ids, y_test[:20].tolist(), settings=iris_project)
    settings = _policy(iris_project, "monitoring:\n  quality: {rmse_rise: 0.5}\n")
    with pytest.raises(
        ConfigError,
        match=r"monitoring\.quality\.rmse_rise: iris v2 is judged as classification: monitor "
        r"computes accuracy, f1, precision, recall for it, never rmse",
    ):
        monitor("p", settings=settings)
    register_iris(iris_project, 1.0, metrics={"train_loss": 0.1})  # v3: no accuracy recorded
    bare = manager.deploy("iris/3", name="bare", settings=iris_project)
    ids = send_named(bare.url, x_test[:20], "c")
    wait_for_capture("bare", iris_project, 20)
    log_labels("bare", ids, y_test[:20].tolist(), settings=iris_project)
    settings = _policy(iris_project, "monitoring:\n  quality: {accuracy_drop: 0.05}\n")
    with pytest.raises(ConfigError, match=r"iris v3 recorded no accuracy to compare with"):
        monitor("bare", settings=settings)
