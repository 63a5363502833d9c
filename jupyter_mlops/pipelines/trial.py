"""A search trial seen from inside its step's kernel: intermediate values go to Optuna, which
may stop the trial early.

The search gives every step kernel of a trial ``JUPYTER_MLOPS_TRIAL`` (the study's storage,
the trial, the metric to report and the pruner). ``log_metrics(..., step=)`` of that metric
then reports the value to the trial and raises ``optuna.TrialPruned`` when the pruner says
the trial will not beat the others: the step stops there and the search records the trial as
pruned, not failed. Outside a search nothing here runs and Optuna is never imported.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from ..exceptions import MlopsError

TRIAL_ENV = "JUPYTER_MLOPS_TRIAL"
PRUNERS = "median, none, threshold:lower=X or threshold:upper=X"


@dataclass(frozen=True)
class TrialLink:
    storage: str
    study: str
    trial_id: int
    number: int
    metric: str
    pruner: str

    def to_env(self) -> dict[str, str]:
        return {TRIAL_ENV: json.dumps(self.__dict__)}


def check_pruner(spec: str) -> str:
    """``spec`` if it names a pruner, else a clear error (before any trial runs)."""
    kind, _, arg = spec.strip().partition(":")
    if kind in ("median", "none") and not arg:
        return spec.strip()
    if kind == "threshold":
        side, _, value = arg.partition("=")
        try:
            float(value)
        except ValueError:
            value = ""
        if side in ("lower", "upper") and value:
            return spec.strip()
    raise MlopsError(f"--pruner {spec!r}: choose {PRUNERS}")


def make_pruner(spec: str) -> Any:
    import optuna

    kind, _, arg = check_pruner(spec).partition(":")
    if kind == "none":
        return optuna.pruners.NopPruner()
    if kind == "threshold":
        side, _, value = arg.partition("=")
        bound = float(value)
        if side == "lower":
            return optuna.pruners.ThresholdPruner(lower=bound)
        return optuna.pruners.ThresholdPruner(upper=bound)
    # a trial is compared with others only once two have finished, and not at its first step
    return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)


_link: TrialLink | None = None
_trial: Any = None


def _current() -> TrialLink | None:
    global _link
    raw = os.environ.get(TRIAL_ENV)
    if not raw:
        return None
    if _link is None:
        _link = TrialLink(**json.loads(raw))
    return _link


def report(metrics: dict[str, Any], step: int | None) -> None:
    """Report the trial's metric at ``step``; raise ``optuna.TrialPruned`` to stop early."""
    global _trial
    link = _current()
    if link is None or step is None or link.metric not in metrics:
        return
    import optuna

    if _trial is None:
        study = optuna.load_study(
            study_name=link.study, storage=link.storage, pruner=make_pruner(link.pruner)
        )
        _trial = optuna.trial.Trial(study, link.trial_id)
    value = float(metrics[link.metric])
    _trial.report(value, step)
    if _trial.should_prune():
        raise optuna.TrialPruned(
            f"trial {link.number} pruned at step {step}: {link.metric} = {value:g} will not "
            "beat the trials so far"
        )
