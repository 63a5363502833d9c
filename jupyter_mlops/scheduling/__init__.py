"""Pipelines and monitors on a schedule, run by jupyter-scheduler inside a Jupyter server.

``schedule_pipeline`` and ``schedule_monitor`` add a job definition to the jupyter-scheduler
of the Jupyter server that serves the project, so the jobs also appear in JupyterLab's
"Notebook Jobs" view; each job runs a small notebook that calls ``run_pipeline`` or
``monitor`` and is recorded like any other pipeline or monitor run.
"""

from .service import (
    Schedule,
    format_schedules,
    schedule,
    schedule_monitor,
    schedule_pipeline,
    schedules,
    unschedule,
)

__all__ = [
    "Schedule",
    "format_schedules",
    "schedule",
    "schedule_monitor",
    "schedule_pipeline",
    "schedules",
    "unschedule",
]
