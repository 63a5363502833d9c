"""jupyter-mlops: the MLOps loop inside the notebook where the model is made.

>>> %load_ext jupyter_mlops        # every cell run becomes an MLflow run  # doctest: +SKIP
>>> jupyter_mlops.log_metrics(val_loss=0.21)                              # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from ._display import output
from ._version import __version__
from .config import Settings, load_settings
from .exceptions import ConfigError, MlopsError, NotFoundError, StoreError, UsageError
from .monitoring.drift import DriftReport, drift
from .monitoring.monitor import MonitorResult, alerts, monitor
from .packaging.package import PackagedModel, package
from .pipelines.runner import PipelineFailed, PipelineResult, run_pipeline
from .pipelines.sweep import SweepResult, run_sweep
from .registry.service import (
    PromotionRefused,
    history,
    models,
    promote,
    register,
    rollback,
)
from .serving.manager import (
    Deployment,
    deploy,
    deployments,
    inference_log,
    set_traffic,
    switch,
    undeploy,
)
from .tracking.api import flush, log_metrics, log_params, set_tags

__all__ = [
    "ConfigError",
    "Deployment",
    "DriftReport",
    "MlopsError",
    "MonitorResult",
    "NotFoundError",
    "PackagedModel",
    "PipelineFailed",
    "PipelineResult",
    "PromotionRefused",
    "Settings",
    "StoreError",
    "SweepResult",
    "UsageError",
    "__version__",
    "alerts",
    "deploy",
    "deployments",
    "drift",
    "flush",
    "history",
    "inference_log",
    "load_ipython_extension",
    "load_settings",
    "log_metrics",
    "log_params",
    "models",
    "monitor",
    "output",
    "package",
    "promote",
    "register",
    "rollback",
    "run_pipeline",
    "run_sweep",
    "set_tags",
    "set_traffic",
    "switch",
    "undeploy",
    "unload_ipython_extension",
]


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext jupyter_mlops``: track every cell run of this kernel."""
    from ._extension import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext jupyter_mlops``: end the session run and stop tracking."""
    from ._extension import unload

    unload(ipython)
