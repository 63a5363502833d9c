"""Our experiments carry the tag MLflow's UI reads to show them as model training."""

from __future__ import annotations

from pathlib import Path

from jupyter_mlops import store
from tests.conftest import settings_for

KIND = {"mlflow.experimentKind": "custom_model_development"}


def kind_tags(tags: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in tags.items() if k == "mlflow.experimentKind"}


def test_a_new_experiment_is_a_model_training_experiment(project: Path) -> None:
    settings = settings_for(project)
    experiment_id = store.get_or_create_experiment(settings, "train.ipynb")
    found = store.client(settings).get_experiment(experiment_id)
    assert kind_tags(found.tags) == KIND


def test_an_existing_experiment_of_ours_gets_the_kind_on_first_use(project: Path) -> None:
    settings = settings_for(project)
    mlflow = store.client(settings)
    old = mlflow.create_experiment("made-by-an-older-version.ipynb")
    assert kind_tags(mlflow.get_experiment(old).tags) == {}
    assert store.get_or_create_experiment(settings, "made-by-an-older-version.ipynb") == old
    assert kind_tags(mlflow.get_experiment(old).tags) == KIND


def test_a_kind_the_user_chose_is_kept(project: Path) -> None:
    settings = settings_for(project)
    mlflow = store.client(settings)
    chosen = mlflow.create_experiment(
        "agents.ipynb", tags={"mlflow.experimentKind": "genai_development"}
    )
    store.get_or_create_experiment(settings, "agents.ipynb")
    assert kind_tags(mlflow.get_experiment(chosen).tags) == {
        "mlflow.experimentKind": "genai_development"
    }
