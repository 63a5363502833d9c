"""The functions every door calls for tracking: start, stop, log, flush, status."""

from __future__ import annotations

import atexit
import numbers
import os
import warnings
from collections.abc import Mapping
from typing import Any

from ..config import Settings, load_settings
from ..exceptions import MlopsError, UsageError
from ..store_check import check_scheme
from .session import SessionInfo, TrackingSession

_active: TrackingSession | None = None


def active_session() -> TrackingSession | None:
    """The tracking session of this kernel, if the extension is loaded."""
    return _active


def require_session() -> TrackingSession:
    if _active is None:
        raise MlopsError("tracking is not running here: run %load_ext jupyter_mlops first")
    return _active


def start_session(shell: Any, settings: Settings | None = None) -> TrackingSession:
    """Start tracking every cell of ``shell``; idempotent."""
    global _active
    if _active is not None:
        return _active
    settings = settings or load_settings()
    check_scheme(settings.tracking_uri)
    check_scheme(settings.registry_uri, "MLFLOW_REGISTRY_URI")
    session = TrackingSession(shell, settings)
    session.start()
    _active = session
    atexit.register(_end_at_exit)
    return session


def notebook_moved(path: str) -> None:
    """Called by the sidebar (silently, in the kernel) after JupyterLab renamed or moved
    this kernel's notebook to ``path`` (absolute); nothing happens when not tracking."""
    from pathlib import Path

    if _active is not None and Path(path).suffix == ".ipynb":
        _active.move(Path(path))


def _end_at_exit() -> None:
    try:
        end_session()
    except Exception:
        pass  # nothing to tell anyone at interpreter exit; the journal keeps the records


def end_session(status: str = "FINISHED") -> None:
    """End this kernel's session: close its run and write what is left."""
    global _active
    session, _active = _active, None
    if session is not None:
        session.end(status)
    atexit.unregister(_end_at_exit)


def set_enabled(enabled: bool) -> bool:
    """Turn cell tracking on or off for the following cells; returns the new state."""
    session = require_session()
    session.recorder.enabled = enabled
    return enabled


def status() -> SessionInfo:
    return require_session().info()


def _warn_untracked(what: str) -> bool:
    if _active is None:
        warnings.warn(
            f"jupyter_mlops.{what}: tracking is not running (run %load_ext jupyter_mlops); "
            "nothing was logged",
            stacklevel=3,
        )
        return False
    return True


def log_metrics(
    metrics: Mapping[str, Any] | None = None, *, step: int | None = None, **kwargs: Any
) -> None:
    """Log metrics to the current cell's run (and the session's history).

    Without ``step``, a metric logged again gets the next step.

    >>> jupyter_mlops.log_metrics(loss=0.31, accuracy=0.92)  # doctest: +SKIP
    >>> jupyter_mlops.log_metrics({"val/loss": 0.4}, step=3)  # doctest: +SKIP
    """
    if step is not None and (isinstance(step, bool) or not isinstance(step, numbers.Integral)):
        raise UsageError(f"log_metrics: step must be a whole number, not {step!r}")
    if _warn_untracked("log_metrics"):
        assert _active is not None
        values = {**(metrics or {}), **kwargs}
        _active.recorder.log_metrics(values, step)
        if "JUPYTER_MLOPS_TRIAL" in os.environ:
            from ..pipelines.trial import report

            report(values, step)  # a search trial's step: Optuna may prune it here


def log_params(params: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
    """Log params to the current cell's run.

    >>> jupyter_mlops.log_params(lr=0.01, optimizer="adam")  # doctest: +SKIP
    """
    if _warn_untracked("log_params"):
        assert _active is not None
        _active.recorder.log_params({**(params or {}), **kwargs})


def set_tags(tags: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
    """Set tags on this kernel's session run."""
    if _warn_untracked("set_tags"):
        assert _active is not None
        _active.recorder.set_tags({k: str(v) for k, v in {**(tags or {}), **kwargs}.items()})


def parse_value(text: str) -> int | float | bool | str:
    """``k=v`` values from the command line: numbers and booleans typed, the rest text."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def log_pairs(
    pairs: Mapping[str, str],
) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """Log ``k=v`` pairs: numbers with metric-like names as metrics, the rest as params.

    Returns the params and metrics logged, and the names not logged with the reason.
    """
    session = require_session()
    metrics: dict[str, Any] = {}
    params: dict[str, Any] = {}
    for key, raw in pairs.items():
        value = parse_value(raw)
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        (metrics if numeric and session.recorder.is_metric(key) else params)[key] = value
    refused = {**session.recorder.log_metrics(metrics), **session.recorder.log_params(params)}
    kept = {k: v for k, v in params.items() if k not in refused}
    return kept, {k: v for k, v in metrics.items() if k not in refused}, refused


def flush(timeout: float = 30.0) -> str:
    """Write every record of this session to the store now; a line saying how it went."""
    session = require_session()
    answer = session.flush(timeout)
    if answer is None:
        return f"the tracking writer did not answer within {timeout:g} s; records stay queued"
    if not answer.get("ok"):
        return "the tracking store is unavailable; records stay in the journal and will be replayed"
    return f"all {session.recorder.recorded} cell records of this session are in the store"


def tracked_params() -> dict[str, Any]:
    """The latest value of every param this session logged."""
    out: dict[str, Any] = {}
    for record in require_session().recorder.recent:
        out.update(record.get("params") or {})
    return out
