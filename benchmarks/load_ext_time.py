"""Wall time of ``%load_ext jupyter_mlops`` in a fresh interpreter.

Each repetition starts a new Python process, creates an IPython shell and times only
``run_line_magic("load_ext", "jupyter_mlops")``, then ends the tracking session and waits
for its drainer to exit. The anchor is ``import mlflow`` in a fresh process, timed in the
same run.

    .venv/bin/python benchmarks/load_ext_time.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from _common import fresh_project, median

REPS = 5
GOAL_SECONDS = 0.5

LOAD_EXT = r"""
import json, sys, time
from IPython.core.interactiveshell import InteractiveShell

shell = InteractiveShell.instance()
t0 = time.perf_counter()
shell.run_line_magic("load_ext", "jupyter_mlops")
seconds = time.perf_counter() - t0
mlflow_in_kernel = "mlflow" in sys.modules

from jupyter_mlops.tracking import api

session = api.active_session()
api.end_session()
deadline = time.monotonic() + 60
while session is not None and session.drainer.alive and time.monotonic() < deadline:
    time.sleep(0.1)
print("RESULT " + json.dumps({
    "seconds": seconds,
    "tracking": session is not None,
    "mlflow_in_kernel": mlflow_in_kernel,
}))
"""

IMPORT_MLFLOW = r"""
import json, time

t0 = time.perf_counter()
import mlflow
print("RESULT " + json.dumps({"seconds": time.perf_counter() - t0}))
"""


def run_child(code: str, cwd: Path, env: dict[str, str]) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    raise RuntimeError(f"child failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")


def main() -> None:
    project = fresh_project("load-ext")
    env = dict(os.environ)
    env["IPYTHONDIR"] = str(project / "ipython")
    for name in ("JUPYTER_MLOPS_NOTEBOOK", "JPY_SESSION_NAME", "PYTHONSTARTUP"):
        env.pop(name, None)

    print(f"load_ext time: {REPS} repetitions, each in a fresh process")
    loads, imports = [], []
    for rep in range(1, REPS + 1):
        load = run_child(LOAD_EXT, project, env)
        anchor = run_child(IMPORT_MLFLOW, project, env)
        if not load["tracking"]:
            raise RuntimeError("%load_ext did not start a tracking session")
        loads.append(load["seconds"])
        imports.append(anchor["seconds"])
        print(
            f"  rep {rep}: %load_ext jupyter_mlops {load['seconds']:6.3f} s"
            f"   import mlflow {anchor['seconds']:6.3f} s"
            f"   mlflow imported by the kernel: {'yes' if load['mlflow_in_kernel'] else 'no'}"
        )

    load_median = median(loads)
    import_median = median(imports)
    verdict = "met" if load_median < GOAL_SECONDS else "NOT met"
    print(f"  median %load_ext jupyter_mlops   {load_median:6.3f} s")
    print(f"  goal: < {GOAL_SECONDS} s: {verdict}")
    print(f"anchor: median import mlflow     {import_median:6.3f} s")
    print(f"RATIO import mlflow / %load_ext: {import_median / load_median:.1f}x faster")
    print(f"project: {project}")


if __name__ == "__main__":
    main()
