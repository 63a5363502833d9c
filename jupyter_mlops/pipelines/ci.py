"""``jupyter mlops ci init``: a CI workflow (GitHub Actions or GitLab CI) that runs a pipeline.

The build installs the project, runs the pipeline with ``--fail-on-refusal`` (so a gate that
refuses a promotion fails it, even where the step's notebook caught the refusal), writes the
audit report of the released model when the run passed, and keeps the executed notebooks and
the report as build artifacts, whether the run passed or not.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from ..config import Settings, load_settings
from ..exceptions import MlopsError
from .spec import load_pipeline

#: where each CI system reads its workflow, relative to the repository root
WORKFLOW_FILES = {"github": Path(".github/workflows/mlops.yml"), "gitlab": Path(".gitlab-ci.yml")}
#: what the build keeps: executed notebooks and the audit report
ARTIFACTS_DIR = "mlops-artifacts"
#: the CPU wheels of torch: the default index's build pulls gigabytes of CUDA libraries
TORCH_INDEX = "https://download.pytorch.org/whl/cpu"


@dataclass
class WorkflowWritten:
    kind: str
    path: Path
    pipeline: str
    audit: str | None
    #: the shell commands of the build, in order, as the workflow runs them
    commands: list[str]

    def summary(self) -> str:
        lines = [f"wrote {self.path} ({self.kind}): runs {self.pipeline}"]
        if self.audit:
            lines.append(f"audit report of {self.audit} when the run passes")
        lines.append(f"artifacts: {ARTIFACTS_DIR}/ (executed notebooks, audit report)")
        return "\n".join(lines)


def install_commands(settings: Settings) -> list[str]:
    """Install jupyter-mlops and the project's own requirements."""
    from .._version import __version__

    commands = [
        "python -m pip install --upgrade pip",
        f'python -m pip install --extra-index-url {TORCH_INDEX} "jupyter-mlops[torch,sklearn]'
        f'=={__version__}"',
    ]
    if (settings.project_dir / "requirements.txt").is_file():
        commands.append("python -m pip install -r requirements.txt")
    if (settings.project_dir / "pyproject.toml").is_file():
        commands.append("python -m pip install -e .")
    commands.append("python -m ipykernel install --user --name python3")
    return commands


def build_commands(pipeline: str, audit: str | None) -> tuple[list[str], list[str]]:
    """(the build's commands, the commands that run whether it passed or not)."""
    build = [f"jupyter mlops run {_shell(pipeline)} --quiet --fail-on-refusal"]
    if audit:
        build.append(f"jupyter mlops audit {_shell(audit)} --out {ARTIFACTS_DIR}/audit")
    keep = [
        f"mkdir -p {ARTIFACTS_DIR}/notebooks",
        # every executed step notebook, by pipeline run (.mlops/pipelines/<run id>/<step>.ipynb)
        f"if [ -d .mlops/pipelines ]; then cp -R .mlops/pipelines/. {ARTIFACTS_DIR}/notebooks/; fi",
    ]
    return build, keep


def init_workflow(
    kind: str,
    pipeline: str,
    *,
    audit: str | None = None,
    python: str | None = None,
    force: bool = False,
    settings: Settings | None = None,
) -> WorkflowWritten:
    """Write the workflow for ``kind`` (``github`` or ``gitlab``) running ``pipeline``.

    ``audit`` (``MODEL@ALIAS``) defaults to ``<params.model_name>@champion`` when the
    pipeline has a ``model_name`` param; ``python`` to this interpreter's version.
    """
    settings = settings or load_settings()
    if kind not in WORKFLOW_FILES:
        raise MlopsError(f"ci init: unknown CI system {kind!r}; use --github or --gitlab")
    path = settings.resolve_inside(pipeline)
    spec = load_pipeline(path)  # a pipeline that does not parse gets no workflow
    relative = path.relative_to(settings.project_dir).as_posix()
    if audit is None and isinstance(spec.params.get("model_name"), str):
        audit = f"{spec.params['model_name']}@champion"
    if audit is not None and "@" not in audit and "/" not in audit:
        raise MlopsError(f"ci init --audit {audit!r}: expected MODEL@ALIAS or MODEL/VERSION")
    target = settings.project_dir / WORKFLOW_FILES[kind]
    if target.exists() and not force:
        raise MlopsError(
            f"{WORKFLOW_FILES[kind]} already exists; it was left as it is (--force replaces it)"
        )
    python = python or f"{sys.version_info.major}.{sys.version_info.minor}"
    install = install_commands(settings)
    build, keep = build_commands(relative, audit)
    render = _github if kind == "github" else _gitlab
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render(spec.name, python, install, build, keep), encoding="utf-8")
    return WorkflowWritten(kind, target, relative, audit, [*install, *build, *keep])


def _shell(word: str) -> str:
    import shlex

    return shlex.quote(word)


def _yaml(text: str) -> str:
    """A YAML scalar: JSON strings are YAML, and keep every character as it is."""
    return json.dumps(text)


def _github(name: str, python: str, install: list[str], build: list[str], keep: list[str]) -> str:
    def run_step(title: str, commands: list[str], condition: str | None = None) -> str:
        body = "".join(f"          {c}\n" for c in commands)
        when = f"        if: {condition}\n" if condition else ""
        return f"      - name: {_yaml(title)}\n{when}        run: |\n{body}"

    steps = [
        "      - uses: actions/checkout@v4\n",
        "      - uses: actions/setup-python@v5\n"
        f"        with:\n          python-version: {_yaml(python)}\n          cache: pip\n",
        run_step("Install", install),
        run_step("Run the pipeline with its gates", build[:1]),
    ]
    if len(build) > 1:
        steps.append(run_step("Audit report", build[1:]))
    steps.append(run_step("Keep the executed notebooks", keep, "always()"))
    steps.append(
        "      - uses: actions/upload-artifact@v4\n"
        "        if: always()\n"
        f"        with:\n          name: mlops-{name}\n          path: {ARTIFACTS_DIR}/\n"
        "          if-no-files-found: warn\n"
    )
    return (
        "# Written by `jupyter mlops ci init --github`: runs the pipeline, fails the build when\n"
        "# a step fails or a gate refuses a promotion, keeps the executed notebooks and the\n"
        "# audit report. It uses the embedded store, fresh in every build; for a team store\n"
        "# give the job  env: {MLFLOW_TRACKING_URI: ${{ secrets.MLFLOW_TRACKING_URI }}}\n"
        f"name: {_yaml('mlops ' + name)}\n"
        "on:\n  push:\n  pull_request:\n  workflow_dispatch:\n"
        "jobs:\n  pipeline:\n    runs-on: ubuntu-latest\n    timeout-minutes: 120\n"
        "    steps:\n" + "".join(steps)
    )


def _gitlab(name: str, python: str, install: list[str], build: list[str], keep: list[str]) -> str:
    def items(commands: list[str]) -> str:
        return "".join(f"    - {_yaml(c)}\n" for c in commands)

    return (
        "# Written by `jupyter mlops ci init --gitlab`: runs the pipeline, fails the job when a\n"
        "# step fails or a gate refuses a promotion, keeps the executed notebooks and the audit\n"
        "# report. It uses the embedded store, fresh in every job; set the CI/CD variable\n"
        "# MLFLOW_TRACKING_URI for a team store.\n"
        "stages: [pipeline]\n"
        f"{_yaml('mlops ' + name)}:\n"
        "  stage: pipeline\n"
        f"  image: {_yaml('python:' + python)}\n"
        "  timeout: 2h\n"
        '  variables:\n    PIP_CACHE_DIR: "$CI_PROJECT_DIR/.cache/pip"\n'
        "  cache:\n    paths: [.cache/pip]\n"
        "  script:\n"
        + items(install + build)
        + "  after_script:\n"
        + items(keep)
        + "  artifacts:\n"
        "    when: always\n"
        f"    paths: [{ARTIFACTS_DIR}/]\n"
        "    expire_in: 30 days\n"
    )
