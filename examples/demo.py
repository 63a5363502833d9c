"""The main job, headless: a tracked notebook, then the standard pipeline, then what
MLflow holds.

1. examples/quickstart.ipynb runs with tracking on; every cell becomes an MLflow run.
2. templates/pipeline.yaml (ingest -> validate -> train -> evaluate -> package -> register
   -> deploy) runs as a papermill DAG, twice: the second run comes entirely from cache. The
   released model is left serving on this machine.
3. The endpoint gets the test images, then the same images inverted: monitoring finds the
   second batch drifted and records an alert.

Usage: python examples/demo.py   (what `make demo` runs)
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import papermill

from jupyter_mlops.config import load_settings
from jupyter_mlops.monitoring.monitor import alerts, format_alerts, monitor
from jupyter_mlops.pipelines.history import format_pipeline_runs, pipeline_runs
from jupyter_mlops.pipelines.runner import run_pipeline
from jupyter_mlops.store import ui_command
from jupyter_mlops.tracking.drainer import drain_orphans
from jupyter_mlops.tracking.queries import cell_runs, format_table

HERE = Path(__file__).resolve().parent


def send(url: str, rows: np.ndarray, batch: int = 32) -> None:
    """POST rows to the endpoint the way a client application would."""
    for i in range(0, len(rows), batch):
        body = json.dumps({"inputs": rows[i : i + batch].tolist()}).encode()
        request = urllib.request.Request(
            f"{url}/invocations", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()


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

    pipeline = HERE.parent / "templates" / "pipeline.yaml"
    print(f"\nrunning the standard pipeline {settings.relative(pipeline)} -p epochs=10 ...")
    first = run_pipeline(pipeline, {"epochs": "10"}, parallel=2, settings=settings)
    print(first.summary())
    print("\nthe same again: unchanged steps come from cache")
    again = run_pipeline(pipeline, {"epochs": "10"}, parallel=2, settings=settings, progress=False)
    print(again.summary())
    endpoint = first.steps["deploy"].outputs["endpoint"]
    print(f"\nthe released model answers at {endpoint}:")
    print(
        f"  curl -s {endpoint}/invocations -H 'Content-Type: application/json' "
        f"-d '{{\"inputs\": [[{', '.join(['0.5'] * 64)}]]}}'"
    )
    print("  (it keeps running; stop it with: jupyter mlops undeploy digits-prod)")

    print("\nmonitoring: the test images as traffic, then the same images inverted (a shift)")
    test = pd.read_parquet(HERE.parent / first.steps["ingest"].outputs["test_path"])
    images = (test.drop(columns="target").to_numpy() / 16.0).astype("float32")
    normal_from = time.time()
    send(endpoint, images)
    time.sleep(1.5)  # the server writes captured requests every half second
    window = f"{time.time() - normal_from + 1:.0f}s"
    print(monitor("digits-prod", window=window, settings=settings).summary())
    time.sleep(1.0)
    shifted_from = time.time()
    send(endpoint, 1.0 - images)
    time.sleep(1.5)
    window = f"{time.time() - shifted_from + 1:.0f}s"
    print(monitor("digits-prod", window=window, settings=settings).summary())
    print(format_alerts(alerts(settings=settings, limit=3)))
    print("\npipeline runs:")
    print(format_pipeline_runs(pipeline_runs(settings, limit=5)))
    print(f"\nopen the MLflow UI on this store:\n  {ui_command(settings)}")
    return 0 if rows and first.ok and again.ok else 1


if __name__ == "__main__":
    sys.exit(main())
