"""Our model server against ``mlflow models serve`` (the anchor), same ONNX model, same client.

One registered MLP (64 -> 64 -> 10, like the digits model) is served both ways. Measured:
launch-to-ready (process start to the first ``/ping`` 200), throughput and p50/p99 latency at
batch 1 with 1 and 8 concurrent clients and at batch 64 with 8, then a 60 s soak of our server
alone at 16 clients (errors and resident memory growth). Our deployment captures every
request to ``.mlops/inference/<id>/``, as in real use. The load client (``loadgen.py``) runs
in its own processes on the same machine as the server; CPU seconds of both are printed so a
client-bound measurement shows as such.

Goals: launch-to-ready < 2 s; throughput >= 3x MLflow's at concurrency 8; p99 <= 0.5x
MLflow's; soak with 0 errors and < 10 % growth of the server's resident memory under load
(from 5 s into the soak to its end). ``--no-capture`` deploys ours without capture, to see
what capture costs.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _common import fresh_project, median, percentile

from jupyter_mlops.config import load_settings
from jupyter_mlops.packaging.package import package
from jupyter_mlops.registry.service import promote, register
from jupyter_mlops.serving import manager

HERE = Path(__file__).resolve().parent
HOST = "127.0.0.1"
OUR_LAUNCHES = 3
MLFLOW_LAUNCHES = 2
WARMUP_REQUESTS = 200
#: (label, batch size, concurrency, requests)
MEASUREMENTS = [
    ("batch 1, concurrency 1", 1, 1, 3000),
    ("batch 1, concurrency 8", 1, 8, 3000),
    ("batch 64, concurrency 8", 64, 8, 1000),
]
SOAK_SECONDS = 60.0
SOAK_CONCURRENCY = 16
#: memory growth is measured under load, from this many seconds into the soak to its end
SOAK_RSS_FROM = 5.0
READY_TIMEOUT = 90.0
CLIENT_TIMEOUT = 300.0
CLOCK_TICK = os.sysconf("SC_CLK_TCK")


# -- processes ---------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def ping(port: int) -> bool:
    conn = http.client.HTTPConnection(HOST, port, timeout=1.0)
    try:
        conn.request("GET", "/ping")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def wait_ready(proc: subprocess.Popen, port: int, started: float, log: Path) -> float:
    """Seconds from ``started`` to the first ``/ping`` 200 of the server on ``port``."""
    while time.perf_counter() - started < READY_TIMEOUT:
        if ping(port):
            return time.perf_counter() - started
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"server exited with code {proc.returncode}:\n{tail}")
        time.sleep(0.01)
    raise RuntimeError(f"server not ready in {READY_TIMEOUT:g} s")


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM the server's whole process group (it runs in its own session), then SIGKILL."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    try:  # children left behind in the group
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children.get(p, []))
    return found


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            continue
    return total / CLOCK_TICK


def machine_busy_seconds() -> float:
    """CPU seconds all processes of the machine have used since boot (from /proc/stat)."""
    with open("/proc/stat", encoding="utf-8") as fh:
        fields = [int(v) for v in fh.readline().split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / CLOCK_TICK  # minus idle and iowait


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


# -- load ----------------------------------------------------------------------------------------
def run_client(
    port: int,
    bodies: Path,
    concurrency: int,
    server: list[int],
    *,
    requests: int | None = None,
    duration: float | None = None,
    rss_of: int | None = None,
) -> dict:
    """Run the load client to completion: its result, the server's CPU seconds over the run
    and, with ``rss_of``, that process's resident memory sampled every half second as
    (seconds since the client started, MB)."""
    amount = ["--requests", str(requests)] if requests else ["--duration", str(duration)]
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        out = Path(fh.name)
    command = [
        sys.executable, str(HERE / "loadgen.py"), "--url", f"http://{HOST}:{port}/invocations",
        "--bodies", str(bodies), "--out", str(out), "--concurrency", str(concurrency), *amount,
    ]  # fmt: skip
    samples: list[tuple[float, float]] = []
    cpu_before = cpu_seconds(server)
    busy_before = machine_busy_seconds()
    proc = subprocess.Popen(command, start_new_session=True)
    launched = time.monotonic()
    deadline = launched + CLIENT_TIMEOUT
    try:
        while True:
            try:
                proc.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                if rss_of:
                    samples.append((time.monotonic() - launched, rss_mb(rss_of)))
                if time.monotonic() > deadline:
                    late = f"load client still running after {CLIENT_TIMEOUT:g} s"
                    raise RuntimeError(late) from None
        server_cpu = cpu_seconds(server) - cpu_before
        machine_cpu = machine_busy_seconds() - busy_before
        if proc.returncode != 0:
            raise RuntimeError(f"load client exited with code {proc.returncode}")
        result = json.loads(out.read_text())
    finally:
        stop(proc)
        out.unlink(missing_ok=True)
    result["server_cpu"] = server_cpu
    result["other_cpu"] = max(0.0, machine_cpu - server_cpu - result["client_cpu"])
    result["rss_samples"] = samples
    return summarize(result)


def summarize(result: dict) -> dict:
    latencies = result.pop("latencies")
    result["throughput"] = result["requests"] / result["wall"]
    result["p50"] = percentile(latencies, 50) * 1000
    result["p99"] = percentile(latencies, 99) * 1000
    return result


def cpu_note(r: dict) -> str:
    """Where the CPU went during a run; ``other`` is every other process of the machine (it
    includes the load client's start-up and the time before its first request)."""
    return (
        f"cpu s: server {r['server_cpu']:.1f}, client {r['client_cpu']:.1f}, "
        f"other {r['other_cpu']:.1f} in {r['wall']:.1f} s wall x {os.cpu_count()} cores"
    )


def measure(name: str, port: int, server: list[int], bodies: dict[int, Path]) -> list[dict]:
    """Warm-up, then each of ``MEASUREMENTS``; the last item sums every request sent."""
    warm = [
        run_client(port, bodies[1], 4, server, requests=WARMUP_REQUESTS),
        run_client(port, bodies[64], 4, server, requests=20),
    ]
    results = []
    for label, batch, concurrency, requests in MEASUREMENTS:
        r = run_client(port, bodies[batch], concurrency, server, requests=requests)
        results.append(r)
        errors = f", {r['errors']} errors ({r['first_error']})" if r["errors"] else ""
        print(
            f"  {name:<7} {label:<24} {r['throughput']:8.0f} req/s  p50 {r['p50']:7.2f} ms  "
            f"p99 {r['p99']:7.2f} ms{errors}"
        )
        print(f"  {'':<7} {'':<24} {cpu_note(r)}")
    return [*results, {"requests": sum(r["requests"] for r in warm + results)}]


def post(port: int, body: bytes) -> Any:
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        conn.request("POST", "/invocations", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"POST /invocations: {response.status} {data[:300]!r}")
        return json.loads(data)
    finally:
        conn.close()


# -- setup ---------------------------------------------------------------------------------------
def write_bodies(directory: Path) -> dict[int, Path]:
    """Request bodies, the same for both servers: 256 of batch 1 and 32 of batch 64."""
    rng = np.random.default_rng(0)
    rows = np.round(rng.random((2048, 64)), 4)
    paths = {}
    for batch, count in ((1, 256), (64, 32)):
        bodies = [{"inputs": rows[i * batch : (i + 1) * batch].tolist()} for i in range(count)]
        paths[batch] = directory / f"bodies-batch{batch}.json"
        paths[batch].write_text(json.dumps(bodies, separators=(",", ":")))
    return paths


def build_model(settings: Any) -> str:
    """Package, register and promote the MLP; its registered version."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    packaged = package(model, torch.rand(16, 64), name="bench", settings=settings)
    version = register(packaged, settings=settings).version
    promote("bench", version, "champion", settings=settings)
    return version


# -- the two servers ---------------------------------------------------------------------------
def bench_ours(settings: Any, bodies: dict[int, Path], probe: bytes, capture: bool) -> dict:
    """Launch-to-ready, the measurements and the soak of our server."""
    root = settings.project_dir
    where = "every request written to .mlops/inference/" if capture else "off"
    print(f"\nours: jupyter_mlops.serving (capture {where})")
    deploy_start = time.perf_counter()
    deployment = manager.deploy("bench@champion", settings=settings, capture=capture)
    print(
        f"  deploy() to ready {time.perf_counter() - deploy_start:.2f} s (fetches the version too)"
    )
    try:
        config = settings.state_dir / "deployments" / deployment.id / "deployment.json"
        launches = []
        for i in range(OUR_LAUNCHES):
            port = free_port()
            log = root / f"launch-ours-{i}.log"
            with open(log, "wb") as out:
                t0 = time.perf_counter()
                proc = subprocess.Popen(
                    [sys.executable, "-m", "jupyter_mlops.serving", "--config", str(config),
                     "--host", HOST, "--port", str(port)],
                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=root,
                    start_new_session=True,
                )  # fmt: skip
            try:
                launches.append(wait_ready(proc, port, t0, log))
            finally:
                stop(proc)
        print("  launch to ready: " + ", ".join(f"{t:.2f} s" for t in launches))
        answer = post(deployment.port, probe)["predictions"]["output"]
        pids = [deployment.pid]
        *results, sent = measure("ours", deployment.port, pids, bodies)

        rss_before = rss_mb(deployment.pid)
        soak = run_client(
            deployment.port, bodies[1], SOAK_CONCURRENCY, pids, duration=SOAK_SECONDS,
            rss_of=deployment.pid,
        )  # fmt: skip
        time.sleep(1.0)  # the capture writer flushes every half second
        under_load = [mb for t, mb in soak["rss_samples"] if t >= SOAK_RSS_FROM]
        soak.update(
            rss_before=rss_before, rss_after=rss_mb(deployment.pid), rss_start=under_load[0],
            rss_end=under_load[-1], rss_max=max(under_load),
            sent=1 + sent["requests"] + soak["requests"],  # 1: the probe
        )  # fmt: skip
        captured = 0
        for path in (settings.state_dir / "inference" / deployment.id).glob("capture-*.jsonl"):
            with open(path, "rb") as fh:
                captured += sum(1 for _ in fh)
        soak["captured"] = captured
    finally:
        manager.undeploy(deployment.id, settings=settings)
    return {"launches": launches, "answer": answer, "results": results, "soak": soak}


def bench_mlflow(settings: Any, version: str, bodies: dict[int, Path], probe: bytes) -> dict:
    """Launch-to-ready of ``mlflow models serve``; the measurements on its last launch."""
    print("\nanchor: mlflow models serve --env-manager local (same registered version)")
    venv_bin = str(Path(sys.executable).parent)
    env = dict(
        os.environ,
        MLFLOW_TRACKING_URI=settings.tracking_uri,
        MLFLOW_REGISTRY_URI=settings.registry_uri,
        PATH=f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",  # it runs `uvicorn`
    )
    launches: list[float] = []
    found: dict[str, Any] = {}
    for i in range(MLFLOW_LAUNCHES):
        port = free_port()
        log = settings.project_dir / f"launch-mlflow-{i}.log"
        with open(log, "wb") as out:
            t0 = time.perf_counter()
            proc = subprocess.Popen(
                [os.path.join(venv_bin, "mlflow"), "models", "serve", "-m",
                 f"models:/bench/{version}", "--env-manager", "local", "-h", HOST,
                 "-p", str(port)],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=settings.project_dir, env=env, start_new_session=True,
            )  # fmt: skip
        try:
            launches.append(wait_ready(proc, port, t0, log))
            if i < MLFLOW_LAUNCHES - 1:
                continue
            print("  launch to ready: " + ", ".join(f"{t:.2f} s" for t in launches))
            found["answer"] = post(port, probe)["predictions"]["output"]
            pids = descendants(proc.pid)  # the CLI and the uvicorn it runs
            *found["results"], _ = measure("MLflow", port, pids, bodies)
            found["rss"] = max(rss_mb(p) for p in pids)
        finally:
            stop(proc)
    return {"launches": launches, **found}


def report(ours: dict, theirs: dict, capture: bool) -> None:
    print("\nsummary")
    diff = float(np.abs(np.asarray(ours["answer"]) - np.asarray(theirs["answer"])).max())
    print(f"  same request, same predictions from both servers: max abs diff {diff:.2g}")
    mine, anchor = median(ours["launches"]), median(theirs["launches"])
    print(
        f"  {'launch to ready (median)':<24} ours {mine:.2f} s   MLflow {anchor:.2f} s   "
        f"RATIO {mine / anchor:.2f}x   goal ours < 2 s: {'met' if mine < 2 else 'NOT met'}"
    )
    for (label, *_), o, t in zip(MEASUREMENTS, ours["results"], theirs["results"]):
        throughput = o["throughput"] / t["throughput"]
        p99 = o["p99"] / t["p99"]
        goal = ""
        if label == "batch 1, concurrency 8":
            met = throughput >= 3 and p99 <= 0.5
            goal = f"   goals >= 3x, <= 0.5x: {'met' if met else 'NOT met'}"
        print(
            f"  {label:<24} RATIO throughput ours/MLflow {throughput:5.2f}x   "
            f"RATIO p99 ours/MLflow {p99:5.2f}x{goal}"
        )
    soak = ours["soak"]
    growth = (soak["rss_end"] - soak["rss_start"]) / soak["rss_start"]
    print(
        f"  soak of ours, {SOAK_SECONDS:.0f} s at concurrency {SOAK_CONCURRENCY}, batch 1, "
        f"capture {'on' if capture else 'off'}: {soak['requests']} requests "
        f"({soak['throughput']:.0f} req/s), {soak['errors']} errors, p50 {soak['p50']:.2f} ms, "
        f"p99 {soak['p99']:.2f} ms"
    )
    print(f"    {cpu_note(soak)}")
    if capture:
        print(f"    captured: {soak['captured']} of the {soak['sent']} requests sent to our server")
    print(
        f"    server RSS under load: {soak['rss_start']:.1f} MB at {SOAK_RSS_FROM:g} s, "
        f"{soak['rss_end']:.1f} MB at the end (max {soak['rss_max']:.1f}), growth {growth:+.1%}"
    )
    print(
        f"    server RSS idle: {soak['rss_before']:.1f} MB before the soak, "
        f"{soak['rss_after']:.1f} MB after; MLflow's server after its runs {theirs['rss']:.1f} MB"
    )
    met = soak["errors"] == 0 and growth < 0.10
    print(f"    goals 0 errors, growth < 10 %: {'met' if met else 'NOT met'}")


# -- main ----------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--no-capture", action="store_true", help="deploy ours without request capture"
    )
    args = parser.parse_args()
    # a SIGTERM unwinds like Ctrl-C, so the servers started here are stopped on the way out
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    torch.set_num_threads(1)
    started = time.perf_counter()
    root = fresh_project("serving")
    settings = load_settings(root)
    print(f"machine: {os.cpu_count()} cores; the servers and the load client share them")
    print("load average at start: " + " ".join(f"{v:.2f}" for v in os.getloadavg()))
    version = build_model(settings)
    bodies = write_bodies(root)
    probe_rows = np.round(np.random.default_rng(1).random((4, 64)), 4)
    probe = json.dumps({"inputs": probe_rows.tolist()}).encode()
    print(f"model: MLP 64-64-10 packaged to ONNX, registered as bench/{version} @champion")
    capture = not args.no_capture
    ours = bench_ours(settings, bodies, probe, capture)
    theirs = bench_mlflow(settings, version, bodies, probe)
    report(ours, theirs, capture)
    print("load average at end: " + " ".join(f"{v:.2f}" for v in os.getloadavg()))
    print(f"project: {root}   total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
