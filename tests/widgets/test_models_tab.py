"""Models tab against a real registry: promote moves the alias, a refusal lists its reasons,
rollback moves it back, Package and Register work from the notebook's variables."""

from __future__ import annotations

from typing import Any

import pytest

from jupyter_mlops import store
from jupyter_mlops.config import Settings
from tests.widgets.conftest import alias_version, text_of


def _pick(panel: Any, version: str, alias: str = "champion") -> None:
    tab = panel.models
    tab.model.value = "lin"
    tab.version.value = version
    tab.alias.value = alias


def test_listing_shows_versions_aliases_and_gate_results(
    registry: Settings, make_panel: Any
) -> None:
    panel = make_panel(tab="models")
    listing = text_of(panel.models.listing.value)
    for word in ("lin", "v1", "v2", "v3", "champion", "champion: passed"):
        assert word in listing
    assert [o[1] for o in panel.models.version.options][:3] == ["3", "2", "1"]


def test_promote_shows_each_gate_then_rollback_moves_the_alias_back(
    registry: Settings, make_panel: Any
) -> None:
    panel = make_panel(tab="models")
    tab = panel.models
    assert alias_version(registry, "champion") == "1"
    _pick(panel, "3")
    tab.reason.value = "better test accuracy"
    tab.promote_button.click()
    tab.worker.wait()
    assert alias_version(registry, "champion") == "3"
    assert not tab.worker.failed
    assert "lin@champion moved from v1 to v3 (passed)" in tab.worker.text
    assert "pass  test_accuracy >= 0.9: test_accuracy = 0.97" in tab.worker.text
    assert "champion: passed" in text_of(tab.listing.value)

    tab.rollback_button.click()
    tab.worker.wait()
    assert alias_version(registry, "champion") == "1"
    assert tab.worker.text == "lin@champion rolled back from v3 to v1"


def test_refused_promotion_lists_its_reasons_and_moves_nothing(
    registry: Settings, make_panel: Any
) -> None:
    panel = make_panel(tab="models")
    tab = panel.models
    before = alias_version(registry, "champion")
    _pick(panel, "2")
    tab.promote_button.click()
    tab.worker.wait()
    assert alias_version(registry, "champion") == before
    assert tab.worker.failed
    assert tab.worker.text == (
        "promotion of lin v2 to 'champion' refused; failed gates:\n"
        "  - test_accuracy >= 0.9: test_accuracy = 0.85\n"
        "nothing was moved (force=True with a reason overrides)"
    )
    assert "refused; failed gates" in text_of(tab.worker.message.value)
    assert "Traceback" not in tab.worker.message.value
    assert "champion: refused" in text_of(tab.listing.value)


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (
            {"alias": "latest"},
            "alias 'latest': letters, digits, '_' and '-', not 'latest' or 'v<n>'",
        ),
        ({"force": True}, "a forced promotion needs a reason (reason='...')"),
    ],
)
def test_bad_promotions_show_the_message(
    registry: Settings, make_panel: Any, setup: dict[str, Any], message: str
) -> None:
    panel = make_panel(tab="models")
    tab = panel.models
    _pick(panel, "3", setup.get("alias", "champion"))
    tab.force.value = setup.get("force", False)
    tab.promote_button.click()
    tab.worker.wait()
    assert tab.worker.failed
    assert tab.worker.text == message
    assert alias_version(registry, "champion") == "1"


def test_rollback_without_history_says_so(registry: Settings, make_panel: Any) -> None:
    panel = make_panel(tab="models")
    _pick(panel, "1", "nosuchalias")
    panel.models.rollback_button.click()
    panel.models.worker.wait()
    assert panel.models.worker.text == "model 'lin' has no alias 'nosuchalias'"


@pytest.mark.slow  # torch's ONNX export
def test_package_and_register_from_notebook_variables(registry: Settings, make_panel: Any) -> None:
    import torch

    torch.manual_seed(0)
    namespace: dict[str, Any] = {
        "net": torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3)),
        "x_example": torch.randn(8, 4),
        "note": "not a model",
    }
    panel = make_panel(namespace, tab="models")
    tab = panel.models
    assert [o[1] for o in tab.model_var.options] == ["net"]
    assert [o[1] for o in tab.example_var.options] == ["x_example"]
    tab.package_name.value = "mlp"
    tab.package_button.click()
    tab.worker.wait(300)
    assert not tab.worker.failed, tab.worker.text
    assert tab.worker.text.startswith("packaged mlp: models:/")
    assert "parity: max abs diff" in tab.worker.text
    assert tab.register_name.value == "mlp"

    tab.register_button.click()
    tab.worker.wait()
    assert tab.worker.text.startswith("registered mlp version 1 from models:/")
    client = store.client(registry)
    assert client.get_model_version("mlp", "1").tags["mlops.parity_passed"] == "true"
    assert tab.model.value == "mlp"


def test_package_without_variables_says_what_to_pick(registry: Settings, make_panel: Any) -> None:
    panel = make_panel({"note": 1}, tab="models")
    tab = panel.models
    assert tab.model_var.options == (("(no model)", None),)
    tab.package_button.click()
    tab.worker.wait()
    assert tab.worker.failed
    assert tab.worker.text == "pick a model variable and an example batch variable first"
