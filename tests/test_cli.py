"""``jupyter mlops``: messages and exit codes."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from jupyter_mlops.cli import main


def test_status_and_flush_on_an_empty_project(project: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["status"])
    assert result.exit_code == 0, result.output
    assert f"project:  {project}" in result.output
    assert "queued:   0 records" in result.output
    result = runner.invoke(main, ["flush"])
    assert result.exit_code == 0, result.output
    assert "wrote 0 records" in result.output


def test_runs_on_unknown_experiment_exits_non_zero(project: Path) -> None:
    result = CliRunner().invoke(main, ["runs", "--experiment", "nope.ipynb"])
    assert result.exit_code == 1
    assert "error: no experiment named 'nope.ipynb'" in result.output


def test_runs_rejects_bad_limit(project: Path) -> None:
    result = CliRunner().invoke(main, ["runs", "-n", "0"])
    assert result.exit_code == 2
    assert "must be at least 1" in result.output


def test_bad_config_is_an_error_exit(project: Path) -> None:
    (project / "mlops.yaml").write_text("tracking: [1]")
    result = CliRunner().invoke(main, ["status"])
    assert result.exit_code == 1
    assert "tracking: expected a mapping" in result.output


def test_ui_prints_the_command(project: Path) -> None:
    result = CliRunner().invoke(main, ["ui"])
    assert result.exit_code == 0
    assert f"mlflow ui --backend-store-uri sqlite:///{project}/.mlops/mlflow.db" in result.output
