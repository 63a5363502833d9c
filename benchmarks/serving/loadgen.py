"""HTTP load client for MLflow-protocol scoring servers, the same for every server measured.

``python loadgen.py --url URL --bodies FILE --out FILE --concurrency N (--requests N |
--duration S) [--times] [--stop-file PATH]`` writes one JSON object to ``--out``: requests,
errors, wall seconds, latencies (seconds, one per request) and the client's own CPU seconds;
with ``--times`` also ``done``, when each request was answered (``time.perf_counter()``,
CLOCK_MONOTONIC: comparable with the clock of another process), in no particular order.
With ``--stop-file`` a run of ``--duration`` also ends once that file exists.

Each of the N client processes keeps one keep-alive ``http.client.HTTPConnection`` and sends
pre-encoded JSON bodies back to back (closed loop). The processes start together behind a
barrier; with ``--requests`` they draw tickets from a shared counter, so the total is exact
and they all stop at the same time. The parent only imports the standard library, so forking
the client processes is cheap and safe.
"""

from __future__ import annotations

import argparse
import array
import http.client
import json
import multiprocessing as mp
import os
import resource
import time
from urllib.parse import urlsplit

HEADERS = {"Content-Type": "application/json"}


def _worker(
    host: str,
    port: int,
    path: str,
    bodies: list[bytes],
    offset: int,
    tickets: mp.sharedctypes.Synchronized | None,
    total: int,
    duration: float,
    barrier: mp.synchronize.Barrier,
    out: mp.connection.Connection,
    stop_file: str | None = None,
) -> None:
    conn = http.client.HTTPConnection(host, port, timeout=30)
    conn.connect()
    latencies = array.array("d")
    done = array.array("d")
    errors = 0
    first_error = ""
    n_bodies = len(bodies)
    i = offset
    clock = time.perf_counter
    barrier.wait()
    start = clock()
    deadline = start + duration
    while True:
        if tickets is not None:
            with tickets.get_lock():
                if tickets.value >= total:
                    break
                tickets.value += 1
        elif clock() >= deadline or (stop_file and i % 64 == 0 and os.path.exists(stop_file)):
            break
        body = bodies[i % n_bodies]
        i += 1
        sent = clock()
        try:
            conn.request("POST", path, body, HEADERS)
            response = conn.getresponse()
            data = response.read()
            status = response.status
        except (OSError, http.client.HTTPException) as err:
            status, data = 0, repr(err).encode()
            conn.close()
            conn = http.client.HTTPConnection(host, port, timeout=30)
        answered = clock()
        latencies.append(answered - sent)
        done.append(answered)
        if status != 200:
            errors += 1
            if not first_error:
                first_error = f"{status}: {data[:200].decode(errors='replace')}"
    end = clock()
    conn.close()
    out.send((start, end, latencies.tobytes(), errors, first_error, done.tobytes()))
    out.close()


def run(
    url: str,
    bodies: list[bytes],
    concurrency: int,
    *,
    requests: int | None = None,
    duration: float | None = None,
    times: bool = False,
    stop_file: str | None = None,
) -> dict:
    """Closed-loop load on ``url`` (``http://host:port/invocations``); see the module doc."""
    if (requests is None) == (duration is None):
        raise ValueError("give exactly one of requests and duration")
    parts = urlsplit(url)
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(concurrency)
    tickets = ctx.Value("q", 0) if requests is not None else None
    pipes = []
    procs = []
    for k in range(concurrency):
        receive, send = ctx.Pipe(duplex=False)
        proc = ctx.Process(
            target=_worker,
            args=(
                parts.hostname, parts.port, parts.path or "/", bodies, k * 7919, tickets,
                requests or 0, duration or 0.0, barrier, send, stop_file,
            ),
        )  # fmt: skip
        proc.start()
        send.close()
        pipes.append(receive)
        procs.append(proc)
    results = [p.recv() for p in pipes]
    for proc in procs:
        proc.join()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    latencies: list[float] = []
    done: list[float] = []
    for _, _, raw, _, _, answered in results:
        for values, raw_values in ((latencies, raw), (done, answered)):
            chunk = array.array("d")
            chunk.frombytes(raw_values)
            values.extend(chunk)
    first_errors = [r[4] for r in results if r[4]]
    extra = {"done": done} if times else {}
    return {
        "requests": len(latencies),
        "errors": sum(r[3] for r in results),
        "first_error": first_errors[0] if first_errors else "",
        "wall": max(r[1] for r in results) - min(r[0] for r in results),
        "latencies": latencies,
        "client_cpu": usage.ru_utime + usage.ru_stime,
        **extra,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--bodies", required=True, help="JSON file: a list of request bodies")
    parser.add_argument("--out", required=True, help="where the JSON result goes")
    parser.add_argument("--concurrency", type=int, default=1)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--requests", type=int)
    group.add_argument("--duration", type=float)
    parser.add_argument("--times", action="store_true", help="also when each was answered")
    parser.add_argument("--stop-file", help="end a --duration run once this file exists")
    args = parser.parse_args(argv)
    with open(args.bodies, encoding="utf-8") as fh:
        bodies = [json.dumps(b, separators=(",", ":")).encode() for b in json.load(fh)]
    result = run(
        args.url, bodies, args.concurrency, requests=args.requests, duration=args.duration,
        times=args.times, stop_file=args.stop_file,
    )  # fmt: skip
    with open(args.out, "w", encoding="utf-8") as fh:
        json.dump(result, fh)


if __name__ == "__main__":
    main()
