"""The Jupyter server of the browser tests: Galata's settings over a freshly seeded project.

The served root is a new temporary folder (or ``JUPYTERLAB_GALATA_ROOT_DIR``) that
``seed_project.py`` fills before the server starts, so every run starts from the same state.
"""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from jupyterlab.galata import configure_jupyter_server

c = get_config()  # type: ignore[name-defined]  # noqa: F821
configure_jupyter_server(c)

for key in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
    os.environ.pop(key, None)
root = os.environ.get("JUPYTERLAB_GALATA_ROOT_DIR") or tempfile.mkdtemp(prefix="mlops-ui-")
subprocess.run([sys.executable, str(Path(__file__).with_name("seed_project.py")), root], check=True)

c.ServerApp.root_dir = root
c.ServerApp.allow_root = True
c.ServerApp.jpserver_extensions = {"jupyter_mlops": True}
