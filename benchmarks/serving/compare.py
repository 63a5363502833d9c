"""Our model server against ``mlflow models serve`` (the anchor), same ONNX model, same client.

One registered MLP (64 -> 64 -> 10, like the digits model) is served two ways: ours as
deployed (capturing every request to ``.mlops/inference/<id>/`` with the default settings)
and ``mlflow models serve`` on the same registered version. Measured:
launch-to-ready (process start to the first ``/ping`` 200, and ``jupyter mlops deploy`` from
launch to its return, which is when the endpoint is ready); throughput and p50/p99 latency
at batch 1 and batch 64 with 1, 8 and 32 concurrent clients; the bytes capture keeps per
request against the request's raw tensor bytes; then a 60 s soak of ours alone at 16
clients (errors and resident memory growth). Each measurement runs on the two servers
back to back, both up, so load from elsewhere on the machine hits them alike, in three
rounds of 3 s of load each that each start with another server; the median round counts.
The capture's cost is measured inside our one server process, in one run of load during
which its capture is switched on and paused live (``set_capture``) every couple of seconds,
in the order on, paused, paused, on, ...: two server processes of the same code differ by
up to 10 % in throughput, and the machine's speed drifts over minutes by more than the cost
being measured. It is the median, over the pairs of phases, of the throughput lost and the
server CPU per request added; each phase counts the requests the client saw answered in a
window that starts once the writer flushed what the phase before queued. The load
client (``loadgen.py``) runs in its own processes on the same machine as the servers; the
CPU seconds of server, client and every other process are printed with each result, so a
client-bound or disturbed measurement shows as such.

Goals: ``jupyter mlops deploy`` < 2 s to ready; at every point throughput >= 3x MLflow's
and p99 <= 0.5x MLflow's with capture on; capture on costs <= 10 % of the throughput
without it; capture keeps <= 1.5x the raw tensor bytes per request; soak with 0 errors and
< 10 % growth of the server's resident memory under load (from 5 s into the soak to its
end).
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
from collections.abc import Callable
from dataclasses import dataclass, field
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
from jupyter_mlops.serving.capture_store import read_stats

HERE = Path(__file__).resolve().parent
HOST = "127.0.0.1"
OUR_LAUNCHES = 3
MLFLOW_LAUNCHES = 2
WARMUP_REQUESTS = 200
CLI_LAUNCHES = 3
#: each measurement is repeated and its median kept: one run's throughput varies by 10-20 %
#: on a shared two-core machine, as much as the capture's cost being measured
ROUNDS = 3
#: pairs of phases of capture on and paused per point, for the capture's cost, in one run of
#: load: two runs of 3 s a minute apart differ by up to 20 % on a shared machine, more than
#: the cost being measured, and ten pairs of such runs of two identical states (an A/A
#: check) gave a median "cost" of -3.6 %
COST_PAIRS = 20
#: seconds a phase is measured, from COST_SETTLE s after its switch: past the capture
#: writer's next flush (every 0.5 s) of what the phase before queued
COST_WINDOW = 1.0
COST_SETTLE = 0.6
#: (label, batch size, concurrency, seconds of load per run): long enough that the client's
#: start-up and a busy moment elsewhere on the machine are a small part of a run
MEASUREMENTS = [
    ("batch 1, concurrency 1", 1, 1, 3.0),
    ("batch 1, concurrency 8", 1, 8, 3.0),
    ("batch 1, concurrency 32", 1, 32, 3.0),
    ("batch 64, concurrency 1", 64, 1, 3.0),
    ("batch 64, concurrency 8", 64, 8, 3.0),
    ("batch 64, concurrency 32", 64, 32, 3.0),
]
#: float32 inputs (64) and outputs (10) of one instance
RAW_BYTES_PER_ROW = (64 + 10) * 4
SOAK_SECONDS = 60.0
SOAK_CONCURRENCY = 16
#: memory growth is measured under load, from this many seconds into the soak to its end
SOAK_RSS_FROM = 5.0
READY_TIMEOUT = 90.0
CLIENT_TIMEOUT = 300.0
CLOCK_TICK = os.sysconf("SC_CLK_TCK")
#: CPU other processes may take during a measurement (in cores) before it is flagged
DISTURBED_CORES = 0.25


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
    during: Callable[[], None] | None = None,
) -> dict:
    """Run the load client to completion: its result, the server's CPU seconds over the run
    and, with ``rss_of``, that process's resident memory sampled every half second as
    (seconds since the client started, MB). With ``during``, that is called once the client
    started, and the client stops when it returns; the result then has ``done``, when each
    request was answered (``time.perf_counter()``)."""
    amount = ["--requests", str(requests)] if requests else ["--duration", str(duration)]
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        out = Path(fh.name)
    stop_file = out.with_suffix(".stop")
    if during is not None:
        amount += ["--times", "--stop-file", str(stop_file)]
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
        if during is not None:
            during()
            stop_file.touch()
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
        stop_file.unlink(missing_ok=True)
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


def disturbed(r: dict) -> bool:
    """Whether other processes of the machine took more than a quarter of a core."""
    return r["other_cpu"] / r["wall"] > DISTURBED_CORES


def cpu_note(r: dict) -> str:
    """Where the CPU went during a run; ``other`` is every other process of the machine (it
    includes the load client's start-up and the time before its first request)."""
    flag = "  DISTURBED by other processes" if disturbed(r) else ""
    return (
        f"cpu s: server {r['server_cpu']:.1f}, client {r['client_cpu']:.1f}, "
        f"other {r['other_cpu']:.1f} in {r['wall']:.1f} s wall x {os.cpu_count()} cores{flag}"
    )


def print_result(name: str, label: str, r: dict) -> None:
    errors = f", {r['errors']} errors ({r['first_error']})" if r["errors"] else ""
    print(
        f"  {name:<7} {label:<24} {r['throughput']:8.0f} req/s  p50 {r['p50']:7.2f} ms  "
        f"p99 {r['p99']:7.2f} ms{errors}"
    )
    print(f"  {'':<7} {'':<24} {cpu_note(r)}")


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
@dataclass
class Server:
    name: str
    port: int
    #: the processes whose CPU counts as the server's
    pids: list[int]
    launches: list[float] = field(default_factory=list)
    results: list[dict] = field(default_factory=list)
    sent: int = 0

    def load(self, bodies: Path, concurrency: int, **kwargs: Any) -> dict:
        result = run_client(self.port, bodies, concurrency, self.pids, **kwargs)
        self.sent += result["requests"]
        return result

    def post(self, body: bytes) -> Any:
        self.sent += 1
        return post(self.port, body)


def time_our_launches(settings: Any, deployment: manager.Deployment) -> list[float]:
    """Process start to first ``/ping`` 200 of our server, for an existing deployment."""
    config = settings.state_dir / "deployments" / deployment.id / "deployment.json"
    launches = []
    for i in range(OUR_LAUNCHES):
        port = free_port()
        log = settings.project_dir / f"launch-ours-{i}.log"
        with open(log, "wb") as out:
            t0 = time.perf_counter()
            proc = subprocess.Popen(
                [sys.executable, "-m", "jupyter_mlops.serving", "--config", str(config),
                 "--host", HOST, "--port", str(port)],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=settings.project_dir, start_new_session=True,
            )  # fmt: skip
        try:
            launches.append(wait_ready(proc, port, t0, log))
        finally:
            stop(proc)
    return launches


def launch_mlflow(settings: Any, version: str) -> tuple[list[float], subprocess.Popen, int]:
    """``mlflow models serve`` launched ``MLFLOW_LAUNCHES`` times, each timed to its first
    ``/ping`` 200; the last one is left running (process, port) for the caller to stop."""
    venv_bin = str(Path(sys.executable).parent)
    env = dict(
        os.environ,
        MLFLOW_TRACKING_URI=settings.tracking_uri,
        MLFLOW_REGISTRY_URI=settings.registry_uri,
        PATH=f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",  # it runs `uvicorn`
    )
    launches: list[float] = []
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
        except BaseException:
            stop(proc)
            raise
        if i < MLFLOW_LAUNCHES - 1:
            stop(proc)
    return launches, proc, port


def time_cli_deploys(settings: Any) -> list[float]:
    """``jupyter mlops deploy bench@champion`` from launch to its return (the endpoint is
    ready then), in a fresh process each time, as a user runs it; each one is stopped."""
    jupyter = os.path.join(os.path.dirname(sys.executable), "jupyter")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    took = []
    for i in range(CLI_LAUNCHES):
        name = f"cli-{i}"
        t0 = time.perf_counter()
        ran = subprocess.run(
            [jupyter, "mlops", "deploy", "bench@champion", "--name", name],
            cwd=settings.project_dir, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        took.append(time.perf_counter() - t0)
        if ran.returncode != 0:
            raise RuntimeError(f"jupyter mlops deploy failed:\n{ran.stdout}{ran.stderr}")
        manager.undeploy(name, settings=settings)
    return took


@dataclass
class CaptureBytes:
    """Bytes the capture directory holds after each run of ours, the requests written and
    those the byte cap removed: a run during which the cap removed a segment is not counted
    in the bytes per request."""

    directory: Path
    points: list[tuple[int, int, int, int]] = field(default_factory=list)

    def settle(self, sent: int) -> tuple[int, int, int]:
        """Wait until the writer accounted for ``sent`` requests: (bytes on disk, written,
        removed by the byte cap)."""
        deadline = time.monotonic() + 60
        while True:
            stats = read_stats(self.directory)
            dropped = sum(stats["dropped"].values())
            if stats["written"] + dropped >= sent or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        size = sum(p.stat().st_size for p in self.directory.glob("capture-*.arrows"))
        return size, stats["written"], stats["dropped"]["max_bytes"]

    def record(self, batch: int, sent: int) -> None:
        self.points.append((batch, *self.settle(sent)))

    def per_request(self) -> dict[int, list[float]]:
        """Bytes kept per request, by batch size, one figure per run the cap left alone."""
        out: dict[int, list[float]] = {}
        for before, after in zip(self.points, self.points[1:]):
            batch, size, written, removed = after
            if written > before[2] and removed == before[3] and size >= before[1]:
                out.setdefault(batch, []).append((size - before[1]) / (written - before[2]))
        return out


@dataclass
class Phase:
    """One phase of the capture's cost: capture on or paused, its window of measurement
    (``time.perf_counter()``), the server's CPU seconds and the requests answered in it."""

    on: bool
    start: float
    end: float
    server_cpu: float
    requests: int = 0

    @property
    def throughput(self) -> float:
        if not self.requests:
            raise RuntimeError("no request was answered in a phase of the capture's cost")
        return self.requests / (self.end - self.start)


def pair_cost(on: Phase, paused: Phase) -> tuple[float, float]:
    """The capture's cost in one pair of phases: throughput lost, and server CPU seconds per
    request added (steadier than throughput: a busy moment elsewhere slows both alike)."""
    lost = 1 - on.throughput / paused.throughput
    per = on.server_cpu / on.requests
    return lost, per / (paused.server_cpu / paused.requests) - 1


def capture_cost(
    ours: Server, bodies: Path, concurrency: int, capture: Callable[[bool], None]
) -> tuple[list[tuple[float, float]], dict]:
    """The capture's cost at one point: one run of load on ours, its capture switched on
    and paused live (``capture(on)``) in ``COST_PAIRS`` pairs of phases, in the order on,
    paused, paused, on, ... so a drift of the machine's speed hits both states alike. A
    phase is measured for ``COST_WINDOW`` s from ``COST_SETTLE`` s after the server
    confirmed the switch: the requests the client saw answered, and the server's CPU.
    Returns per pair (see ``pair_cost``) and the run, its throughput that of the paused
    phases."""
    phases: list[Phase] = []

    def switch() -> None:
        time.sleep(COST_SETTLE)  # the client's processes start and connect
        for i in range(2 * COST_PAIRS):
            on = i % 4 in (0, 3)
            capture(on)
            time.sleep(COST_SETTLE)
            start, cpu = time.perf_counter(), cpu_seconds(ours.pids)
            time.sleep(COST_WINDOW)
            phases.append(Phase(on, start, time.perf_counter(), cpu_seconds(ours.pids) - cpu))
        capture(True)

    result = ours.load(bodies, concurrency, duration=CLIENT_TIMEOUT, during=switch)
    done = np.sort(np.asarray(result.pop("done")))
    for phase in phases:
        phase.requests = int(np.searchsorted(done, phase.end) - np.searchsorted(done, phase.start))
    pairs = []
    for first, second in zip(phases[::2], phases[1::2], strict=True):
        on, paused = (first, second) if first.on else (second, first)
        pairs.append(pair_cost(on, paused))
    stopped = [p for p in phases if not p.on]
    answered = sum(p.requests for p in stopped)
    result["throughput"] = answered / sum(p.end - p.start for p in stopped)
    return pairs, result


def compare(
    servers: list[Server],
    bodies: dict[int, Path],
    probe: bytes,
    kept: CaptureBytes,
    capture: Callable[[bool], None],
) -> tuple[float, list[list[tuple[float, float]]], list[dict]]:
    """Warm-up, then each measurement on the servers back to back, ``ROUNDS`` times in turn,
    so load from elsewhere on the machine hits them alike; each server's result is its
    median round by throughput. Then the capture's cost on the first server (see
    ``capture_cost``). Returns the largest difference of the servers' predictions, and per
    measurement the capture's cost in each pair of phases and the run it was measured in."""
    answers = [np.asarray(s.post(probe)["predictions"]["output"]) for s in servers]
    for server in servers:
        server.load(bodies[1], 4, requests=WARMUP_REQUESTS)
        server.load(bodies[64], 4, requests=20)
    kept.record(0, servers[0].sent)
    costs: list[list[tuple[float, float]]] = []
    paused: list[dict] = []
    for label, batch, concurrency, seconds in MEASUREMENTS:
        runs: dict[str, list[dict]] = {server.name: [] for server in servers}
        for round_ in range(ROUNDS):
            # each server goes first in one round: none gains from its place in the order
            turn = round_ % len(servers)
            for server in servers[turn:] + servers[:turn]:
                runs[server.name].append(server.load(bodies[batch], concurrency, duration=seconds))
                if server is servers[0]:
                    kept.record(batch, server.sent)
        pairs, run = capture_cost(servers[0], bodies[batch], concurrency, capture)
        kept.record(batch, servers[0].sent)
        costs.append(pairs)
        paused.append(run)
        for server in servers:
            result = sorted(runs[server.name], key=lambda r: r["throughput"])[
                len(runs[server.name]) // 2
            ]
            server.results.append(result)
            print_result(server.name, label, result)
    return float(max(np.abs(answers[0] - a).max() for a in answers[1:])), costs, paused


def soak(ours: Server, bodies: dict[int, Path], kept: CaptureBytes) -> dict:
    """``SOAK_SECONDS`` of batch-1 load at ``SOAK_CONCURRENCY`` on our server alone."""
    pid = ours.pids[0]
    rss_before = rss_mb(pid)
    result = ours.load(bodies[1], SOAK_CONCURRENCY, duration=SOAK_SECONDS, rss_of=pid)
    under_load = [mb for t, mb in result["rss_samples"] if t >= SOAK_RSS_FROM]
    _, captured, _ = kept.settle(ours.sent)
    stats = read_stats(kept.directory)
    result.update(
        rss_before=rss_before, rss_after=rss_mb(pid), rss_start=under_load[0],
        rss_end=under_load[-1], rss_max=max(under_load), captured=captured, sent=ours.sent,
        dropped={r: n for r, n in stats["dropped"].items() if n},
    )  # fmt: skip
    return result


def _verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def report(
    servers: list[Server],
    diff: float,
    costs: list[list[tuple[float, float]]],
    paused: list[dict],
    soaked: dict,
    cli: list[float],
    kept: CaptureBytes,
) -> None:
    ours, theirs = servers
    print("\nsummary")
    print(f"  same request, same predictions from all servers: max abs diff {diff:.2g}")
    mine, anchor = median(ours.launches), median(theirs.launches)
    print(
        f"  {'server launch to ready':<28} ours {mine:.2f} s   MLflow {anchor:.2f} s   "
        f"RATIO {mine / anchor:.2f}x"
    )
    deploy = median(cli)
    print(
        f"  {'jupyter mlops deploy':<28} {', '.join(f'{t:.2f}' for t in cli)} s, median "
        f"{deploy:.2f} s   RATIO to MLflow's launch {deploy / anchor:.2f}x   goal < 2 s: "
        f"{_verdict(deploy < 2)}"
    )
    print("  capture on (as deployed) against MLflow, and against ours with capture paused:")
    all_met = True
    cost_met = True
    for (label, *_), o, b, t, rounds in zip(
        MEASUREMENTS, ours.results, paused, theirs.results, costs
    ):
        throughput = o["throughput"] / t["throughput"]
        p99 = o["p99"] / t["p99"]
        cost = median([c for c, _ in rounds])
        cpu = median([c for _, c in rounds])
        met = throughput >= 3 and p99 <= 0.5
        all_met &= met
        cost_met &= cost <= 0.10
        lost = sorted(c for c, _ in rounds)
        quartiles = f"{lost[len(lost) // 4]:+.1%} to {lost[(3 * len(lost)) // 4]:+.1%}"
        print(
            f"    {label:<24} RATIO throughput {throughput:5.2f}x  p99 {p99:5.2f}x "
            f"({_verdict(met)}); capture paused {b['throughput'] / t['throughput']:.2f}x"
        )
        print(
            f"    {'':<24} capture costs {cost:+6.1%} throughput ({_verdict(cost <= 0.10)}), "
            f"median of {len(rounds)} pairs (quartiles {quartiles}); {cpu:+.1%} server CPU "
            "per request"
        )
    print(f"    goals >= 3x throughput, <= 0.5x p99 at every point: {_verdict(all_met)}")
    print(f"    goal capture costs <= 10 % throughput at every point: {_verdict(cost_met)}")
    for batch, figures in sorted(kept.per_request().items()):
        per = median(figures)
        raw = batch * RAW_BYTES_PER_ROW
        print(
            f"    capture at batch {batch:<3} {per:8.0f} bytes per request (median of "
            f"{len(figures)} runs), raw tensors {raw} bytes: RATIO {per / raw:.2f}x "
            f"(goal <= 1.5x: {_verdict(per <= 1.5 * raw)})"
        )
    growth = (soaked["rss_end"] - soaked["rss_start"]) / soaked["rss_start"]
    print(
        f"  soak of ours, {SOAK_SECONDS:.0f} s at concurrency {SOAK_CONCURRENCY}, batch 1, "
        f"capture on: {soaked['requests']} requests "
        f"({soaked['throughput']:.0f} req/s), {soaked['errors']} errors, "
        f"p50 {soaked['p50']:.2f} ms, p99 {soaked['p99']:.2f} ms"
    )
    print(f"    {cpu_note(soaked)}")
    print(
        f"    captured: {soaked['captured']} of the {soaked['sent']} requests sent to ours; "
        f"dropped {soaked['dropped'] or 'none'}"
    )
    print(
        f"    server RSS under load: {soaked['rss_start']:.1f} MB at {SOAK_RSS_FROM:g} s, "
        f"{soaked['rss_end']:.1f} MB at the end (max {soaked['rss_max']:.1f}), "
        f"growth {growth:+.1%}"
    )
    print(
        f"    server RSS idle: {soaked['rss_before']:.1f} MB before the soak, "
        f"{soaked['rss_after']:.1f} MB after; MLflow's server after its runs "
        f"{theirs.results[-1]['rss']:.1f} MB"
    )
    met = soaked["errors"] == 0 and growth < 0.10
    print(f"    goals 0 errors, growth < 10 %: {_verdict(met)}")
    runs = [*ours.results, *paused, *theirs.results, soaked]
    if any(disturbed(r) for r in runs):
        print(
            f"  {sum(disturbed(r) for r in runs)} of {len(runs)} measurements were DISTURBED: "
            f"other processes took more than {DISTURBED_CORES:g} core; rerun on a quiet machine"
        )


# -- main ----------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="a tenth of the requests and a 5 s soak: a smoke run"
    )
    args = parser.parse_args()
    if args.quick:
        global SOAK_SECONDS, ROUNDS, COST_PAIRS
        SOAK_SECONDS = 5.0
        ROUNDS = 1
        COST_PAIRS = 2
        MEASUREMENTS[:] = [(label, b, c, t / 10) for label, b, c, t in MEASUREMENTS]
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
    print("ours: jupyter_mlops.serving, capture on as deployed (default mlops.yaml settings)")
    print("capture's cost: ours with its capture paused live, in the same process")
    print("anchor: mlflow models serve --env-manager local, same registered version")

    print("\nlaunch to ready")
    cli = time_cli_deploys(settings)
    print("  jupyter mlops deploy  " + ", ".join(f"{t:.2f} s" for t in cli))
    deployment = manager.deploy("bench@champion", name="bench-ours", settings=settings)
    try:
        ours = Server("ours", deployment.port, [deployment.pid])
        ours.launches = time_our_launches(settings, deployment)
        print("  ours (server alone)   " + ", ".join(f"{t:.2f} s" for t in ours.launches))
        launches, proc, port = launch_mlflow(settings, version)
        kept = CaptureBytes(settings.state_dir / "inference" / deployment.id)
        try:
            print("  MLflow                " + ", ".join(f"{t:.2f} s" for t in launches))
            # the CLI process and the uvicorn it runs
            theirs = Server("MLflow", port, descendants(proc.pid), launches)
            print("\nload, each measurement on ours, then MLflow's")

            def capture(on: bool) -> None:
                manager.set_capture(deployment.id, on, settings=settings)

            diff, costs, paused = compare([ours, theirs], bodies, probe, kept, capture)
            theirs.results[-1]["rss"] = max(rss_mb(p) for p in theirs.pids)
        finally:
            stop(proc)
        soaked = soak(ours, bodies, kept)
    finally:
        manager.undeploy(deployment.id, settings=settings)
    report([ours, theirs], diff, costs, paused, soaked, cli, kept)
    print("load average at end: " + " ".join(f"{v:.2f}" for v in os.getloadavg()))
    print(f"project: {root}   total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
