"""Every bad input to evaluate() gets a message that names what to fix."""

from __future__ import annotations

import pytest

from jupyter_mlops import MlopsError, NotFoundError, evaluate
from jupyter_mlops.exceptions import ConfigError
from tests.analysis.conftest import Cancer

pytestmark = pytest.mark.slow


def test_a_slice_column_missing_from_the_data(cancer: Cancer) -> None:
    (cancer.root / "mlops.yaml").write_text("models:\n  cancer:\n    slices: [region]\n")
    with pytest.raises(MlopsError) as err:
        evaluate(cancer.packaged, cancer.table, target="target")
    message = str(err.value)
    assert message.startswith(
        f"slice column 'region' (from {cancer.root / 'mlops.yaml'}: models.cancer.slices) "
        "is not in the data (columns: mean_radius, mean_texture,"
    )
    with pytest.raises(MlopsError, match=r"^slice column 'regoin' \(from slices=\.\.\.\)"):
        evaluate(cancer.packaged, cancer.table, target="target", slices=["regoin"])


def test_a_target_column_missing_from_the_data(cancer: Cancer) -> None:
    (cancer.root / "mlops.yaml").write_text("")
    with pytest.raises(MlopsError) as err:
        evaluate(cancer.packaged, cancer.table, target="label")
    assert str(err.value) == (
        "target column 'label' is not in the data (columns: mean_radius, mean_texture, "
        "mean_smoothness, mean_concavity, noise, size, target)"
    )


def test_a_model_column_missing_from_the_data(cancer: Cancer) -> None:
    (cancer.root / "mlops.yaml").write_text("")
    with pytest.raises(MlopsError, match=r"^the model reads column 'noise', which is not"):
        evaluate(cancer.packaged, cancer.table.drop(columns="noise"), target="target")


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        (
            "digits-latest",
            "unknown model URI 'digits-latest': expected runs:/<run id>/model, "
            "models:/<name>/<version>, models:/<name>@<alias>, models:/m-<logged model id> "
            "or a PackagedModel",
        ),
        ("models:/nobody/1", "no registered model 'nobody' (models: "),
        ("models:/nobody@champion", "no registered model 'nobody' (models: "),
        ("runs:/0123456789abcdef/model", "runs:/0123456789abcdef/model: no run '0123456789abcdef'"),
        ("models:/m-0123456789abcdef", "models:/m-0123456789abcdef: no logged model"),
    ],
)
def test_an_unknown_model_uri(cancer: Cancer, uri: str, message: str) -> None:
    (cancer.root / "mlops.yaml").write_text("")
    with pytest.raises(NotFoundError) as err:
        evaluate(uri, cancer.table, target="target")
    assert str(err.value).startswith(message)


def test_bad_slice_settings_in_mlops_yaml(cancer: Cancer) -> None:
    (cancer.root / "mlops.yaml").write_text("models:\n  cancer:\n    slice: [size]\n")
    with pytest.raises(ConfigError, match=r"models\.cancer: unknown key 'slice' \(known: "):
        evaluate(cancer.packaged, cancer.table, target="target")
    (cancer.root / "mlops.yaml").write_text("models:\n  cancer:\n    slices: {size: 1}\n")
    with pytest.raises(
        ConfigError, match=r"models\.cancer\.slices: must be a list of column names"
    ):
        evaluate(cancer.packaged, cancer.table, target="target")


def test_a_model_that_is_neither_uri_nor_module(cancer: Cancer) -> None:
    with pytest.raises(MlopsError, match=r"^evaluate\(\) takes a model URI .* got builtins\.int"):
        evaluate(3, cancer.table, target="target")
