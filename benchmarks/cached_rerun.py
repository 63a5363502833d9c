"""A fully cached re-run of the standard pipeline (templates/pipeline.yaml), without its
`monitor` step, which is never cached (production traffic changes with every request).

Anchor: the cold run of the same pipeline in the same project (every step executed). Then
the cached re-run is timed twice: inside the same process (what `%mlops run` costs from a
notebook) and as a fresh `jupyter mlops run` command (Python start-up and imports
included). Goal: < 2 s in total.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import fresh_project

from jupyter_mlops.config import load_settings
from jupyter_mlops.pipelines.runner import run_pipeline

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
GOAL = 2.0


def without_monitor(spec: Path) -> Path:
    import yaml

    data = yaml.safe_load(spec.read_text())
    data["steps"].pop("monitor", None)
    target = spec.with_name("cached.yaml")
    target.write_text(yaml.safe_dump(data, sort_keys=False))
    return target


def main() -> None:
    root = fresh_project("cached-rerun")
    shutil.copytree(TEMPLATES, root / "templates")
    spec = without_monitor(root / "templates" / "pipeline.yaml")
    settings = load_settings(root)
    params = {"epochs": "3"}

    start = time.perf_counter()
    cold = run_pipeline(spec, params, settings=settings, progress=False)
    cold_s = time.perf_counter() - start

    start = time.perf_counter()
    warm = run_pipeline(spec, params, settings=settings, progress=False)
    warm_s = time.perf_counter() - start
    assert all(s.status == "CACHED" for s in warm.steps.values()), warm.summary()
    from jupyter_mlops.serving.manager import deployments, undeploy

    cli = Path(sys.executable).with_name("jupyter-mlops")
    start = time.perf_counter()
    done = subprocess.run(
        [str(cli), "run", str(spec), "-p", "epochs=3", "--quiet"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    cli_s = time.perf_counter() - start
    assert done.stdout.count("CACHED") == len(warm.steps), done.stdout

    print(f"cached re-run of the standard pipeline ({len(warm.steps)} steps, epochs=3)")
    print(f"  anchor: cold run, every step executed       {cold_s:7.2f} s  ({cold.status})")
    print(f"  cached re-run inside the same process        {warm_s:7.2f} s")
    print(f"  cached re-run as a fresh `jupyter mlops run`  {cli_s:7.2f} s")
    print(
        f"RATIO cold / cached (in process): {cold_s / warm_s:.0f}x; "
        f"cold / cached (CLI): {cold_s / cli_s:.1f}x"
    )
    print(
        f"goal < {GOAL} s: in process {'met' if warm_s < GOAL else 'NOT met'}, "
        f"CLI {'met' if cli_s < GOAL else 'NOT met'}"
    )
    for d in deployments(settings=settings):
        if d.status == "running":
            undeploy(d.id, settings=settings)
    print(f"project: {root}")


if __name__ == "__main__":
    main()
