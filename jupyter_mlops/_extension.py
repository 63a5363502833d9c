"""IPython glue for ``%load_ext jupyter_mlops``: magics, then the tracking session."""

from __future__ import annotations

import os
from typing import Any

from .config import load_settings
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
    # the user's own mlflow calls in this kernel land in the same store as ours
    os.environ.setdefault("MLFLOW_TRACKING_URI", settings.tracking_uri)
    try:
        session = api.start_session(shell, settings)
    except Exception as err:  # tracking must never stop the notebook from working
        print(f"jupyter-mlops: could not start tracking ({type(err).__name__}: {err})")
        return
    state = "every cell" if session.recorder.enabled else "nothing yet (tracking.enabled: false)"
    where = settings.relative(settings.state_dir) if settings.is_embedded else settings.tracking_uri
    print(
        f"jupyter-mlops: tracking {state} of {session.experiment!r} in {where} "
        "(%mlops help for commands)"
    )


def unload(shell: Any) -> None:
    api.end_session()
