"""jupyter-mlops: the MLOps loop inside the notebook where the model is made.

>>> %load_ext jupyter_mlops        # every cell run becomes an MLflow run  # doctest: +SKIP
>>> jupyter_mlops.log_metrics(val_loss=0.21)                              # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._display import output
from ._version import __version__
from .config import Settings, load_settings
from .exceptions import ConfigError, MlopsError, NotFoundError, StoreError, UsageError

if TYPE_CHECKING:
    from .analysis.evaluate import EvaluationResult, evaluate
    from .audit import AuditReport, audit
    from .monitoring.drift import DriftReport, drift
    from .monitoring.labels import log_labels
    from .monitoring.monitor import MonitorResult, alerts, monitor
    from .packaging.package import PackagedModel, package
    from .pipelines.reproduce import Reproduction, reproduce
    from .pipelines.runner import PipelineFailed, PipelineResult, run_pipeline
    from .pipelines.search import SearchResult, search
    from .pipelines.sweep import SweepResult, run_sweep
    from .registry.service import (
        PromotionRefused,
        history,
        models,
        promote,
        register,
        rollback,
    )
    from .scheduling import Schedule, schedule, schedules, unschedule
    from .serving.manager import (
        Deployment,
        deploy,
        deployments,
        inference_log,
        set_capture,
        set_traffic,
        switch,
        undeploy,
    )
    from .tracking.api import flush, log_metrics, log_params, set_tags
    from .tracking.lineage import lineage
    from .tracking.slicing import value_digest
    from .tracking.stale import StaleRun, stale
    from .widgets import panel

# imported on first use, so %load_ext pays only for tracking, and a command only for itself
_LAZY = {
    "EvaluationResult": "analysis.evaluate",
    "evaluate": "analysis.evaluate",
    "AuditReport": "audit",
    "audit": "audit",
    "flush": "tracking.api",
    "log_metrics": "tracking.api",
    "log_params": "tracking.api",
    "set_tags": "tracking.api",
    "lineage": "tracking.lineage",
    "value_digest": "tracking.slicing",
    "StaleRun": "tracking.stale",
    "stale": "tracking.stale",
    "DriftReport": "monitoring.drift",
    "drift": "monitoring.drift",
    "log_labels": "monitoring.labels",
    "MonitorResult": "monitoring.monitor",
    "alerts": "monitoring.monitor",
    "monitor": "monitoring.monitor",
    "PackagedModel": "packaging.package",
    "package": "packaging.package",
    "PipelineFailed": "pipelines.runner",
    "PipelineResult": "pipelines.runner",
    "run_pipeline": "pipelines.runner",
    "search": "pipelines.search",
    "SearchResult": "pipelines.search",
    "Reproduction": "pipelines.reproduce",
    "reproduce": "pipelines.reproduce",
    "SweepResult": "pipelines.sweep",
    "run_sweep": "pipelines.sweep",
    "PromotionRefused": "registry.service",
    "history": "registry.service",
    "models": "registry.service",
    "promote": "registry.service",
    "register": "registry.service",
    "rollback": "registry.service",
    "Deployment": "serving.manager",
    "deploy": "serving.manager",
    "deployments": "serving.manager",
    "inference_log": "serving.manager",
    "set_capture": "serving.manager",
    "set_traffic": "serving.manager",
    "switch": "serving.manager",
    "undeploy": "serving.manager",
    "panel": "widgets",
    "Schedule": "scheduling",
    "schedule": "scheduling",
    "schedules": "scheduling",
    "unschedule": "scheduling",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'jupyter_mlops' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "AuditReport",
    "ConfigError",
    "Deployment",
    "DriftReport",
    "EvaluationResult",
    "MlopsError",
    "MonitorResult",
    "NotFoundError",
    "PackagedModel",
    "PipelineFailed",
    "PipelineResult",
    "PromotionRefused",
    "Reproduction",
    "Schedule",
    "SearchResult",
    "Settings",
    "StaleRun",
    "StoreError",
    "SweepResult",
    "UsageError",
    "__version__",
    "alerts",
    "audit",
    "deploy",
    "deployments",
    "drift",
    "evaluate",
    "flush",
    "history",
    "inference_log",
    "lineage",
    "load_ipython_extension",
    "load_settings",
    "log_labels",
    "log_metrics",
    "log_params",
    "models",
    "monitor",
    "output",
    "package",
    "panel",
    "promote",
    "register",
    "reproduce",
    "rollback",
    "run_pipeline",
    "run_sweep",
    "schedule",
    "schedules",
    "search",
    "set_capture",
    "set_tags",
    "set_traffic",
    "stale",
    "switch",
    "undeploy",
    "unload_ipython_extension",
    "unschedule",
    "value_digest",
]


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext jupyter_mlops``: track every cell run of this kernel."""
    from ._extension import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext jupyter_mlops``: end the session run and stop tracking."""
    from ._extension import unload

    unload(ipython)


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    """The Jupyter server extension (REST for the sidebar); imported only by the server."""
    return [{"module": "jupyter_mlops.server"}]
