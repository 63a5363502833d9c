"""The notebook a scheduled job runs, and what it calls.

jupyter-scheduler executes a copy of the notebook in a staging folder of its own, after a
cell with the job definition's parameters (``name = "value"`` lines) that it puts below the
cell tagged ``parameters``; the notebook moves to the project and runs the pipeline or the
monitor there, so the job is recorded in the project's store like any other run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

#: a run made by a scheduled job names its schedule
SCHEDULE_TAG = "mlops.schedule"

_DEFAULTS = (
    'schedule_name = ""\nkind = ""\ntarget = ""\nproject_dir = ""\nwindow = ""\nparams = "{}"'
)
_CALL = (
    "from jupyter_mlops.scheduling.job import run_job\n\n"
    "run_job(schedule_name, kind, target, project_dir, window=window, params=params)"
)


def job_notebook(kernel: str) -> Any:
    """The job's notebook: the parameters cell jupyter-scheduler fills, then the call."""
    import nbformat

    intro = (
        "# Scheduled by jupyter-mlops\n\nA pipeline or monitor on a schedule "
        "(`jupyter mlops schedules` lists them, `jupyter mlops unschedule NAME` removes one). "
        "The cell below holds the job's parameters."
    )
    nb = nbformat.v4.new_notebook()  # type: ignore[no-untyped-call]
    nb.metadata["kernelspec"] = {"name": kernel, "display_name": kernel, "language": "python"}
    nb.cells = [
        nbformat.v4.new_markdown_cell(intro),  # type: ignore[no-untyped-call]
        nbformat.v4.new_code_cell(_DEFAULTS, metadata={"tags": ["parameters"]}),  # type: ignore[no-untyped-call]
        nbformat.v4.new_code_cell(_CALL),  # type: ignore[no-untyped-call]
    ]
    return nb


def parameters(
    name: str, kind: str, target: str, project: Path, window: str, params: dict[str, str]
) -> dict[str, str]:
    """The job definition's parameters, as jupyter-scheduler writes them into the notebook:
    each value a Python literal, since it is put there as ``name = value``."""
    values = {
        "schedule_name": name,
        "kind": kind,
        "target": target,
        "project_dir": str(project),
        "window": window,
        "params": json.dumps(params, sort_keys=True),
    }
    return {key: json.dumps(value) for key, value in values.items()}


def run_job(
    name: str, kind: str, target: str, project_dir: str, *, window: str = "", params: str = "{}"
) -> Any:
    """Run what schedule ``name`` names, in ``project_dir``; a failed pipeline raises, so the
    job is marked failed in jupyter-scheduler."""
    from ..config import load_settings

    os.chdir(project_dir)
    settings = load_settings(project_dir)
    if kind == "pipeline":
        from ..pipelines.runner import run_pipeline

        result = run_pipeline(
            target, json.loads(params), settings=settings, progress=False,
            tags={SCHEDULE_TAG: name},
        )  # fmt: skip
        print(result.summary())
        return result
    if kind == "monitor":
        return _monitor(name, target, window, settings)
    raise ValueError(f"schedule {name!r}: unknown kind {kind!r}")


def _monitor(name: str, deployment_id: str, window: str, settings: Any) -> Any:
    from .. import store
    from ..monitoring.drift import DriftInputError
    from ..monitoring.monitor import monitor
    from ..serving.capture import has_capture
    from ..serving.manager import get_deployment

    get_deployment(deployment_id, settings=settings)  # an undeployed one fails the job
    if not has_capture(settings.state_dir / "inference" / deployment_id):
        print(f"{deployment_id} has served no request yet: nothing to check")
        return None
    try:
        result = monitor(deployment_id, window, settings=settings)
    except DriftInputError as err:  # a quiet window is no failure of the job
        print(err)
        return None
    store.client(settings).set_tag(result.run_id, SCHEDULE_TAG, name)
    print(result.summary())
    return result
