"""IPython glue for ``%load_ext jupyter_mlops``: magics, then the tracking session."""

from __future__ import annotations

import os
from typing import Any

from . import store
from .config import Settings, load_settings
from .exceptions import MlopsError
from .magics import MlopsMagics
from .tracking import api


def load(shell: Any) -> None:
    shell.register_magics(MlopsMagics)
    if api.active_session() is not None:
        print("jupyter-mlops: already tracking this kernel (%mlops status)")
        return
    try:
        settings = load_settings()
    except MlopsError as err:
        print(f"jupyter-mlops: {err}\njupyter-mlops: cell tracking is off until this is fixed")
        return
    try:
        # run records, logs and the database are the user's alone
        store.private_dir(settings.state_dir)
        store.private_dir(settings.state_dir / "logs")
    except OSError as err:
        print(f"jupyter-mlops: cannot create {settings.state_dir} ({err})")
        return
    exported = export_tracking_uri(settings)
    try:
        session = api.start_session(shell, settings)
    except Exception as err:  # tracking must never stop the notebook from working
        print(f"jupyter-mlops: could not start tracking ({type(err).__name__}: {err})")
        return
    store.secure_state_dir(settings)  # the writer's log, opened with the umask's mode
    state = "every cell" if session.recorder.enabled else "nothing yet (tracking.enabled: false)"
    where = settings.relative(settings.state_dir) if settings.is_embedded else settings.tracking_uri
    print(
        f"jupyter-mlops: tracking {state} of {session.experiment!r} in {where} "
        "(%mlops help for commands)"
    )
    if exported:
        print(EXPORT_NOTICE)


#: One line of the load banner: ``!python train.py`` and the user's own ``mlflow`` calls now
#: go to the project store, which they should know and be able to turn off.
EXPORT_NOTICE = (
    "jupyter-mlops: MLFLOW_TRACKING_URI set to the project store for this kernel "
    "(mlops.yaml tracking.export_tracking_uri: false to keep it unset)"
)


def export_tracking_uri(settings: Settings) -> bool:
    """Point ``MLFLOW_TRACKING_URI`` of this kernel (and its children) at the project store.

    Only when ``mlops.yaml`` allows it and the variable is unset; True when it was set here.
    """
    if not settings.tracking.export_tracking_uri or os.environ.get("MLFLOW_TRACKING_URI"):
        return False
    os.environ["MLFLOW_TRACKING_URI"] = settings.tracking_uri
    return True


def unload(shell: Any) -> None:
    api.end_session()
