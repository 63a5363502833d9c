"""A fully cached re-run of the standard pipeline (templates/pipeline.yaml, all 8 steps; the
`monitor` step is a hit while production captured no new request).

Anchors, in the same run and the same project: the cold run (every step executed), and the
cached re-run as a fresh process that records its runs in the store itself before it exits
(what `jupyter mlops run` did before: Python start-up, `import mlflow`, the SQL store). Then
the cached re-run as the fresh `jupyter mlops run` command (the cache index answers, a
writer process records the runs afterwards; how long until they are in the store is printed
too) and inside the same process (what `%mlops run` costs from a notebook). Goal: < 1 s from
the command line.
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
GOAL = 1.0
REPEAT = 5

_DIRECT = """
import sys
from jupyter_mlops.pipelines.runner import run_pipeline
result = run_pipeline(sys.argv[1], {"epochs": "3"}, progress=False)
assert all(s.status == "CACHED" for s in result.steps.values()), result.summary()
"""


def timed(command: list[str], cwd: Path) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=True)
    return time.perf_counter() - start, done.stdout


def pipeline_runs(settings: object) -> int:
    from jupyter_mlops.pipelines.history import pipeline_runs as history

    return len(history(settings, limit=1000))  # type: ignore[arg-type]


def main() -> None:
    from jupyter_mlops.serving.manager import deployments, undeploy

    root = fresh_project("cached-rerun")
    shutil.copytree(TEMPLATES, root / "templates")
    spec = root / "templates" / "pipeline.yaml"
    settings = load_settings(root)
    params = {"epochs": "3"}
    try:
        start = time.perf_counter()
        cold = run_pipeline(spec, params, settings=settings, progress=False)
        cold_s = time.perf_counter() - start

        start = time.perf_counter()
        warm = run_pipeline(spec, params, settings=settings, progress=False)
        warm_s = time.perf_counter() - start
        assert all(s.status == "CACHED" for s in warm.steps.values()), warm.summary()

        direct = [timed([sys.executable, "-c", _DIRECT, str(spec)], root)[0] for _ in range(REPEAT)]
        cli = Path(sys.executable).with_name("jupyter-mlops")
        before = pipeline_runs(settings)
        commands = []
        recorded = []
        for _ in range(REPEAT):
            began = time.perf_counter()
            seconds, out = timed([str(cli), "run", str(spec), "-p", "epochs=3", "--quiet"], root)
            assert out.count("CACHED") == len(warm.steps), out
            commands.append(seconds)
            # until the writer has put this run in the store and removed its journal
            deadline = time.monotonic() + 120
            while list(settings.journal_dir.glob("*.jsonl")):
                assert time.monotonic() < deadline, "the writer did not finish in 120 s"
                time.sleep(0.05)
            recorded.append(time.perf_counter() - began)
        after = pipeline_runs(settings)
    finally:
        for d in deployments(settings=settings):
            if d.status == "running":
                undeploy(d.id, settings=settings)

    cli_s = sorted(commands)[REPEAT // 2]
    direct_s = sorted(direct)[REPEAT // 2]
    median_recorded = sorted(recorded)[REPEAT // 2]
    print(f"cached re-run of the standard pipeline ({len(warm.steps)} steps, epochs=3)")
    print(f"  anchor: cold run, every step executed             {cold_s:7.2f} s  ({cold.status})")
    print(
        f"  anchor: fresh process writing its runs itself     {direct_s:7.2f} s  (median, {REPEAT})"
    )
    print(
        f"  fresh `jupyter mlops run`, from the cache index   {cli_s:7.2f} s  (median of {REPEAT})"
    )
    print(f"    its runs in the store after                     {median_recorded:7.2f} s")
    print(f"  cached re-run inside the same process             {warm_s:7.2f} s")
    print(
        f"  pipeline runs recorded by the {REPEAT} commands: {after - before} (expected {REPEAT})"
    )
    print(
        f"RATIO CLI / direct: {cli_s / direct_s:.2f}x; cold / CLI: {cold_s / cli_s:.0f}x; "
        f"cold / in process: {cold_s / warm_s:.0f}x"
    )
    print(f"goal CLI < {GOAL} s: {'met' if cli_s < GOAL else 'NOT met'}")
    print(f"project: {root}")


if __name__ == "__main__":
    main()
