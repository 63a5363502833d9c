"""Project discovery, the store location and the messages for a bad mlops.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest

from jupyter_mlops.config import find_project_dir, load_settings
from jupyter_mlops.exceptions import ConfigError, MlopsError


def test_project_is_nearest_mlops_yaml_then_git_root_then_cwd(tmp_path: Path) -> None:
    deep = tmp_path / "repo" / "a" / "b"
    deep.mkdir(parents=True)
    assert find_project_dir(deep) == deep
    (tmp_path / "repo" / ".git").mkdir()
    assert find_project_dir(deep) == tmp_path / "repo"
    (tmp_path / "repo" / "a" / "mlops.yaml").write_text("")
    assert find_project_dir(deep) == tmp_path / "repo" / "a"


def test_embedded_store_by_default_and_env_overrides(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings()
    assert settings.tracking_uri == f"sqlite:///{project}/.mlops/mlflow.db"
    assert settings.registry_uri == settings.tracking_uri
    assert settings.artifact_root == project / ".mlops" / "artifacts"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", "http://127.0.0.1:5001")
    settings = load_settings()
    assert (settings.tracking_uri, settings.registry_uri) == (
        "http://127.0.0.1:5000",
        "http://127.0.0.1:5001",
    )
    assert not settings.is_embedded


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tracking: [1]", "mlops.yaml: tracking: expected a mapping"),
        ("tracking:\n  colour: red", "tracking: unknown key 'colour'"),
        ("trackin:\n  enabled: true", "unknown section 'trackin'"),
        ("tracking:\n  enabled: maybe", "tracking.enabled: must be true or false"),
        ("tracking:\n  metric_pattern: '('", "tracking.metric_pattern: not a regular expression"),
        ("tracking:\n  metrics: loss", "tracking.metrics: must be a list of names"),
        ("tracking:\n  max_param_length: -1", "tracking.max_param_length: must be a positive"),
        ("- a\n- b", "expected a mapping at the top level"),
        ("tracking: {enabled: [}", "not valid YAML"),
    ],
)
def test_bad_config_names_file_and_field(project: Path, text: str, message: str) -> None:
    (project / "mlops.yaml").write_text(text)
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert message in str(err.value)
    assert str(project / "mlops.yaml") in str(err.value)


def test_config_is_read(project: Path) -> None:
    (project / "mlops.yaml").write_text(
        "tracking:\n  enabled: false\n  metrics: [perplexity]\n  source_tag_limit: 10\n"
    )
    tracking = load_settings().tracking
    assert (tracking.enabled, tracking.metrics, tracking.source_tag_limit) == (
        False,
        ("perplexity",),
        10,
    )


def test_user_paths_stay_inside_the_project(project: Path) -> None:
    settings = load_settings()
    assert settings.resolve_inside("data/x.csv") == project / "data" / "x.csv"
    with pytest.raises(MlopsError, match="outside the project directory"):
        settings.resolve_inside("../elsewhere.csv")
    with pytest.raises(MlopsError, match="outside the project directory"):
        settings.resolve_inside("/etc/passwd")
