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


def test_the_ui_command_says_which_view_to_pick(project: Path) -> None:
    settings = settings_for(project)
    if not settings.is_embedded:
        assert store.ui_command(settings) == (
            f"open {settings.tracking_uri} in a browser; "
            'then open it and choose "Model training" (top left) once'
        )
        return
    assert store.ui_command(settings) == (
        f"mlflow ui --backend-store-uri sqlite:///{project}/.mlops/mlflow.db "
        f"--default-artifact-root {(project / '.mlops' / 'artifacts').as_uri()} "
        '--host 127.0.0.1  # then open it and choose "Model training" (top left) once'
    )
