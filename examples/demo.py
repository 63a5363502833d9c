"""Run examples/quickstart.ipynb headless with tracking on, then show what MLflow holds.

Usage: python examples/demo.py   (what `make demo` runs)
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import papermill

from jupyter_mlops.config import load_settings
from jupyter_mlops.store import ui_command
from jupyter_mlops.tracking.drainer import drain_orphans
from jupyter_mlops.tracking.queries import cell_runs, format_table

HERE = Path(__file__).resolve().parent


def main() -> int:
    settings = load_settings(HERE)
    notebook = HERE / "quickstart.ipynb"
    out_dir = settings.state_dir / "demo"
    out_dir.mkdir(parents=True, exist_ok=True)
    os.environ["JUPYTER_MLOPS_NOTEBOOK"] = str(notebook)
    print(f"running {settings.relative(notebook)} headless (tracking on) ...", flush=True)
    started = time.perf_counter()
    papermill.execute_notebook(
        str(notebook),
        str(out_dir / "quickstart.ipynb"),
        cwd=str(HERE),
        kernel_name="python3",
        progress_bar=False,
    )
    print(f"done in {time.perf_counter() - started:.1f} s", flush=True)
    # the kernel's writer flushes at shutdown; this picks up anything still queued
    drain_orphans(settings, wait=30)
    experiment = settings.relative(notebook)
    rows = cell_runs(settings, experiment=experiment, limit=20)
    print(f"\ncell runs recorded in experiment {experiment!r} of {settings.tracking_uri}:\n")
    print(format_table(rows))
    print(f"\nexecuted notebook: {settings.relative(out_dir / 'quickstart.ipynb')}")
    print(f"open the MLflow UI on this store:\n  {ui_command(settings)}")
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
