"""jupyter mlops ci init: workflows valid by their published schemas, and their commands run
here as the build would run them, failing it when a gate refuses a promotion."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from jupyter_mlops.cli import main
from tests.pipelines.helpers import pipeline_file, step_notebook

BIN = Path(sys.executable).parent

MODEL_CELLS = (
    "import torch\nfrom torch import nn\nimport jupyter_mlops",
    "torch.manual_seed(0)\nmodel = nn.Sequential(nn.Linear(4, 3))\n"
    "packaged = jupyter_mlops.package(model, torch.randn(8, 4), name=model_name, "
    'metrics={"test_accuracy": accuracy})',
    'jupyter_mlops.output("model_uri", packaged.model_uri)',
)
# as in templates/register.ipynb: the notebook catches the refusal and goes on
REGISTER_CELLS = (
    "import jupyter_mlops",
    "version = jupyter_mlops.register(model_uri, model_name)",
    'gates = {"metrics": {"test_accuracy": ">= 0.9"}, "parity": True}\n'
    "try:\n"
    '    jupyter_mlops.promote(model_name, version.version, "champion", reason="ci", gates=gates)\n'
    "    moved = True\n"
    "except jupyter_mlops.PromotionRefused as refused:\n"
    "    print(refused)\n"
    "    moved = False",
    'jupyter_mlops.output("promoted", moved)',
)


def _pipeline(root: Path, accuracy: float) -> Path:
    step_notebook(root / "model.ipynb", 'accuracy = 0.0\nmodel_name = ""', *MODEL_CELLS)
    step_notebook(root / "register.ipynb", 'model_uri = ""\nmodel_name = ""', *REGISTER_CELLS)
    return pipeline_file(
        root / "pipeline.yaml",
        {
            "name": "tiny",
            "params": {"accuracy": accuracy, "model_name": "tiny"},
            "steps": {
                "model": {
                    "notebook": "model.ipynb",
                    "params": {
                        "accuracy": "${params.accuracy}",
                        "model_name": "${params.model_name}",
                    },
                    "outputs": ["model_uri"],
                },
                "register": {
                    "notebook": "register.ipynb",
                    "params": {
                        "model_uri": "${steps.model.model_uri}",
                        "model_name": "${params.model_name}",
                    },
                    "outputs": ["promoted"],
                },
            },
        },
    )


def _schema_check(schema: str, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", schema, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _run_github_steps(root: Path, workflow: Path) -> list[tuple[str, int, str]]:
    """Each `run:` step but the install (this environment is the installed one), in order,
    as Actions runs them: after a failure, only steps marked ``if: always()``."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    failed = False
    done = []
    for step in yaml.safe_load(workflow.read_text())["jobs"]["pipeline"]["steps"]:
        if "run" not in step or step["name"] == "Install":
            continue
        if failed and step.get("if") != "always()":
            continue
        proc = subprocess.run(
            ["bash", "-e", "-c", step["run"]],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        done.append((step["name"], proc.returncode, proc.stdout + proc.stderr))
        failed = failed or proc.returncode != 0
    return done


@pytest.mark.timeout(1800)
def test_github_workflow_is_valid_and_its_build_fails_when_a_gate_refuses(project: Path) -> None:
    _pipeline(project, accuracy=0.95)
    result = CliRunner().invoke(main, ["ci", "init", "pipeline.yaml", "--github"])
    assert result.exit_code == 0, result.output
    workflow = project / ".github/workflows/mlops.yml"
    assert f"wrote {workflow}" in result.output
    assert "audit report of tiny@champion" in result.output
    checked = _schema_check("vendor.github-workflows", workflow)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    text = workflow.read_text()
    assert "jupyter mlops run pipeline.yaml --quiet --fail-on-refusal" in text
    assert "jupyter-mlops[torch,sklearn]==" in text and "whl/cpu" in text

    # a version that passes its gates: the build passes, the report and notebooks are kept
    passed = _run_github_steps(project, workflow)
    assert [(name, rc) for name, rc, _ in passed] == [
        ("Run the pipeline with its gates", 0),
        ("Audit report", 0),
        ("Keep the executed notebooks", 0),
    ], passed
    kept = project / "mlops-artifacts"
    assert list((kept / "audit").glob("*.html")), passed[1][2]
    assert len(list((kept / "notebooks").glob("*/register.ipynb"))) == 1

    # a worse version: the notebook catches the refusal, the build fails all the same,
    # says why, writes no report and still keeps the notebooks of both runs
    _pipeline(project, accuracy=0.5)
    refused = _run_github_steps(project, workflow)
    assert [(name, rc) for name, rc, _ in refused] == [
        ("Run the pipeline with its gates", 1),
        ("Keep the executed notebooks", 0),
    ], refused
    output = refused[0][2]
    assert "gate refused in step 'register': promotion of tiny v2 to 'champion' refused" in output
    assert "test_accuracy" in output
    assert "error: a gate refused a promotion in step 'register'" in output
    assert len(list((kept / "notebooks").glob("*/register.ipynb"))) == 2


def test_gitlab_pipeline_is_valid_and_runs_the_same_commands(project: Path) -> None:
    _pipeline(project, accuracy=0.95)
    runner = CliRunner()
    github = runner.invoke(main, ["ci", "init", "pipeline.yaml", "--github", "--python", "3.11"])
    gitlab = runner.invoke(main, ["ci", "init", "pipeline.yaml", "--gitlab", "--python", "3.11"])
    assert github.exit_code == 0 and gitlab.exit_code == 0, github.output + gitlab.output
    path = project / ".gitlab-ci.yml"
    checked = _schema_check("vendor.gitlab-ci", path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    job = yaml.safe_load(path.read_text())["mlops tiny"]
    assert job["image"] == "python:3.11"
    assert job["artifacts"] == {
        "when": "always",
        "paths": ["mlops-artifacts/"],
        "expire_in": "30 days",
    }
    steps = yaml.safe_load((project / ".github/workflows/mlops.yml").read_text())["jobs"]
    commands = [
        line
        for step in steps["pipeline"]["steps"]
        if "run" in step
        for line in step["run"].splitlines()
    ]
    assert job["script"] + job["after_script"] == commands
    assert steps["pipeline"]["steps"][1]["with"]["python-version"] == "3.11"


def test_a_project_with_requirements_installs_them(project: Path) -> None:
    _pipeline(project, accuracy=0.95)
    (project / "requirements.txt").write_text("scikit-learn\n")
    (project / "pyproject.toml").write_text("[project]\nname = 'x'\nversion = '0'\n")
    result = CliRunner().invoke(main, ["ci", "init", "pipeline.yaml", "--gitlab"])
    assert result.exit_code == 0, result.output
    script = yaml.safe_load((project / ".gitlab-ci.yml").read_text())["mlops tiny"]["script"]
    assert "python -m pip install -r requirements.txt" in script
    assert "python -m pip install -e ." in script


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        (None, ["--github"], "already exists; it was left as it is (--force replaces it)"),
        (None, [], "ci init needs --github or --gitlab"),
        ("missing", ["--github"], "no such pipeline file"),
        ("outside", ["--github"], "outside the project directory"),
        ("malformed", ["--github"], "pipeline.yaml"),
        (None, ["--github", "--force", "--audit", "tiny"], "expected MODEL@ALIAS or MODEL/VERSION"),
    ],
)
def test_bad_ci_init(project: Path, setup: str | None, args: list[str], message: str) -> None:
    _pipeline(project, accuracy=0.95)
    workflow = project / ".github/workflows/mlops.yml"
    workflow.parent.mkdir(parents=True)
    workflow.write_text("name: ours\n")
    target = "pipeline.yaml"
    if setup == "missing":
        target = "nothing.yaml"
    elif setup == "outside":
        target = str(project.parent / "pipeline.yaml")
        (project.parent / "pipeline.yaml").write_text("name: x\n")
    elif setup == "malformed":
        (project / "pipeline.yaml").write_text("name: tiny\nsteps: [\n")
    result = CliRunner().invoke(main, ["ci", "init", target, *args])
    assert result.exit_code != 0
    assert message in result.output
    assert workflow.read_text() == "name: ours\n"  # nothing was replaced
