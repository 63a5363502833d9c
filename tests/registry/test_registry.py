"""A real SQLite registry: register, gates pass / fail / force, history and rollback."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper

from jupyter_mlops import store
from jupyter_mlops.cli import main
from jupyter_mlops.exceptions import ConfigError, MlopsError, NotFoundError
from jupyter_mlops.magics import run_line
from jupyter_mlops.packaging.requirements import served_requirements
from jupyter_mlops.registry.service import (
    PromotionRefused,
    history,
    models,
    promote,
    register,
    rollback,
)
from tests.conftest import settings_for

GATES = {"metrics": {"test_accuracy": ">= 0.9"}, "parity": True, "beat_current": "test_accuracy"}


def tiny_model(project: Path, accuracy: float, parity: bool = True) -> str:
    """A logged ONNX model (an Identity graph) whose run holds ``test_accuracy``."""
    import mlflow
    import mlflow.onnx

    settings = settings_for(project)
    store.use_fluent(settings)
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2])],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    onnx.checker.check_model(proto)
    experiment = store.get_or_create_experiment(settings, "models")
    with mlflow.start_run(experiment_id=experiment) as run:
        mlflow.log_metric("test_accuracy", accuracy)
        mlflow.set_tag("mlops.parity_passed", str(parity).lower())
        info = mlflow.onnx.log_model(
            onnx_model=proto,
            name="model",
            onnx_execution_providers=["CPUExecutionProvider"],
            pip_requirements=served_requirements(),
        )
    assert run.info.run_id
    return info.model_uri


def test_register_promote_refuse_force_and_roll_back(project: Path) -> None:
    v1 = register(tiny_model(project, 0.95), "digits")
    assert (v1.name, v1.version) == ("digits", "1")
    client = store.client(settings_for(project))
    assert client.get_model_version("digits", "1").tags["mlops.parity_passed"] == "true"

    first = promote("digits", 1, "champion", "first model", gates=GATES)
    assert (first.previous, first.verdict) == (None, "passed")
    assert [g.passed for g in first.gates] == [True, True, True]
    assert first.gates[2].evidence == "no current holder"

    v2 = register(tiny_model(project, 0.93), "digits")
    with pytest.raises(PromotionRefused) as err:
        promote("digits", v2.version, "champion", gates=GATES)
    message = str(err.value)
    assert "promotion of digits v2 to 'champion' refused; failed gates:" in message
    assert (
        "beats current on test_accuracy (higher is better): test_accuracy = 0.93 vs v1 0.95"
        in message
    )
    assert str(client.get_model_version_by_alias("digits", "champion").version) == "1"
    assert [m.to_version for m in history("digits")] == ["1"]
    assert (
        '"verdict": "refused"'
        in client.get_model_version("digits", "2").tags["mlops.gate.champion"]
    )

    with pytest.raises(MlopsError, match="a forced promotion needs a reason"):
        promote("digits", 2, "champion", gates=GATES, force=True)
    forced = promote("digits", 2, "champion", "hotfix for a data bug", gates=GATES, force=True)
    assert (forced.previous, forced.verdict) == ("1", "forced")

    v3 = register(tiny_model(project, 0.5, parity=False), "digits")
    with pytest.raises(PromotionRefused) as err:
        promote("digits", v3.version, "champion", gates=GATES)
    assert "test_accuracy >= 0.9: test_accuracy = 0.5" in str(err.value)
    assert "parity: parity passed: False" in str(err.value)

    back = rollback("digits", "champion")
    assert (back.from_version, back.to_version) == ("2", "1")
    assert str(client.get_model_version_by_alias("digits", "champion").version) == "1"
    moves = history("digits")
    assert [(m.kind, m.from_version, m.to_version, m.gates) for m in moves] == [
        ("promote", None, "1", "passed"),
        ("promote", "1", "2", "forced"),
        ("rollback", "2", "1", "rollback"),
    ]
    assert moves[1].reason == "hotfix for a data bug"
    assert moves[0].who and moves[0].when.endswith("+00:00")
    with pytest.raises(
        MlopsError, match="nothing to roll back to: digits@champion had no holder before v1"
    ):
        rollback("digits", "champion")

    [info] = models()
    assert info.aliases == {"champion": "1"}
    assert [(v.version, v.aliases, v.gates) for v in info.versions] == [
        ("1", ["champion"], {"champion": "passed"}),
        ("2", [], {"champion": "forced"}),
        ("3", [], {"champion": "refused"}),
    ]


def test_rollback_to_the_same_version_is_refused_and_versions_show_their_metrics(
    project: Path,
) -> None:
    register(tiny_model(project, 0.91), "same")
    register(tiny_model(project, 0.97), "same")
    promote("same", 1, "champion", "first")
    # promoting the holder again moves nothing: there is still nothing to roll back to
    again = promote("same", 1, "champion", "again")
    assert again.previous == "1"
    [info] = models("same")
    assert info.rollback_to == {"champion": None}
    with pytest.raises(MlopsError, match="nothing to roll back to: same@champion") as err:
        rollback("same", "champion")
    assert "promote another version instead" in str(err.value)
    assert [m.kind for m in history("same")] == ["promote", "promote"]

    promote("same", 2, "champion", "better")
    promote("same", 2, "champion", "same again")
    [info] = models("same")
    assert info.rollback_to == {"champion": "1"}
    assert [v.metrics for v in info.versions] == [{"test_accuracy": 0.91}, {"test_accuracy": 0.97}]
    back = rollback("same", "champion")
    assert (back.from_version, back.to_version) == ("2", "1")
    assert models("same")[0].rollback_to == {"champion": None}


def test_promotion_without_gates_is_recorded_as_such(project: Path) -> None:
    register(tiny_model(project, 0.1), "plain")
    result = promote("plain", 1, "staging")
    assert result.verdict == "no gates"
    assert history("plain")[0].gates == "no gates"


def test_gates_from_mlops_yaml(project: Path) -> None:
    (project / "mlops.yaml").write_text(
        "registry:\n  gates:\n    champion:\n      metrics: {test_accuracy: '>= 0.99'}\n"
    )
    register(tiny_model(project, 0.95), "cfg")
    with pytest.raises(PromotionRefused, match=r"test_accuracy >= 0.99: test_accuracy = 0.95"):
        promote("cfg", 1)
    assert promote("cfg", 1, "staging").verdict == "no gates"  # no gates for staging


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        (
            "registry:\n  gates:\n    champion:\n      speed: fast\n",
            "registry.gates.champion: unknown gate 'speed'",
        ),
        (
            "registry:\n  gates:\n    champion:\n      metrics: {acc: 'about 0.9'}\n",
            "metrics.acc: threshold 'about 0.9': write it like '>= 0.9'",
        ),
        (
            "registry:\n  gates:\n    champion:\n      parity: maybe\n",
            "parity: must be true or false",
        ),
        (
            "registry:\n  gates:\n    champion:\n      quantized: int8\n",
            "quantized: must be true or false",
        ),
    ],
)
def test_bad_gate_config(project: Path, yaml_text: str, message: str) -> None:
    (project / "mlops.yaml").write_text(yaml_text)
    register(tiny_model(project, 0.95), "bad")
    with pytest.raises(ConfigError) as err:
        promote("bad", 1)
    assert message in str(err.value)
    client = store.client(settings_for(project))
    assert client.get_registered_model("bad").aliases == {}


def test_unknown_things(project: Path) -> None:
    register(tiny_model(project, 0.9), "known")
    with pytest.raises(NotFoundError, match=r"no registered model 'nope' \(models: known\)"):
        promote("nope", 1)
    with pytest.raises(NotFoundError, match=r"model 'known' has no version 7 \(versions: 1\)"):
        promote("known", 7)
    with pytest.raises(NotFoundError, match="model 'known' has no alias 'champion'"):
        rollback("known", "champion")
    with pytest.raises(MlopsError, match="alias 'v2'"):
        promote("known", 1, "v2")
    with pytest.raises(MlopsError, match="takes a PackagedModel or a runs:/ or models:/ URI"):
        register("/tmp/model.onnx", "known")
    with pytest.raises(NotFoundError, match="cannot register runs:/0123456789abcdef/model"):
        register("runs:/0123456789abcdef/model", "ghost")
    client = store.client(settings_for(project))
    assert [str(v.version) for v in client.search_model_versions("name = 'known'")] == ["1"]
    assert not client.search_model_versions("name = 'ghost'")


def test_doors(project: Path) -> None:
    register(tiny_model(project, 0.95), "door")
    runner = CliRunner()
    ok = runner.invoke(main, ["promote", "door", "1", "--alias", "staging"])
    assert ok.exit_code == 0, ok.output
    assert "door@staging moved to v1 (no gates)" in ok.output
    listed = runner.invoke(main, ["models"])
    assert "door" in listed.output and "staging" in listed.output
    missing = runner.invoke(main, ["promote", "door", "9"])
    assert missing.exit_code == 1
    assert "error: model 'door' has no version 9" in missing.output
    back = runner.invoke(main, ["rollback", "door", "--alias", "staging"])
    assert back.exit_code == 1
    assert "nothing to roll back to" in back.output
    assert "door@staging moved" in run_line("promote door 1 --alias staging --force --reason again")
    with pytest.raises(MlopsError, match="nothing packaged here yet"):
        run_line("register")
    assert "no registered model 'zzz'" in runner.invoke(main, ["models", "zzz"]).output
