"""What recording a cell's files costs the reads inside the cell.

Reads a 1 GiB file (1 MiB blocks, then ``numpy.fromfile``) and opens 5,000 small files, in
fresh processes taking turns: the anchor is a plain process, the other has the audit hook
installed and a ``FileWatch`` watching (as during a tracked cell), so every ``open`` goes
through the hook. Each process reads the file once untimed so both read from the page
cache. The hook costs per ``open`` call, never per byte; the small-file case shows that
cost. The file's content digest is not part of this: the writer process computes it.

    .venv/bin/python benchmarks/file_read_overhead.py [--gib 1] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import median

from jupyter_mlops.tracking.files import MAX_FILES

GOAL_PERCENT = 3.0
SMALL_FILES = 5000

CHILD = r"""
import json, sys, time
from pathlib import Path
import numpy as np
root, big, watched = Path(sys.argv[1]), sys.argv[2], sys.argv[3] == "1"
if watched:
    from jupyter_mlops.tracking.files import FileWatch
    watch = FileWatch(root, skip=[root / ".mlops"]).install()
    watch.start()
def blocks():
    buf = bytearray(1 << 20)
    with open(big, "rb", buffering=0) as fh:
        while fh.readinto(buf):
            pass
blocks()  # into the page cache, untimed
out = {}
t0 = time.perf_counter(); blocks(); out["blocks"] = time.perf_counter() - t0
t0 = time.perf_counter(); np.fromfile(big, dtype=np.uint8)
out["fromfile"] = time.perf_counter() - t0
small = sorted((root / "small").iterdir())
t0 = time.perf_counter()
for p in small:
    with open(p, "rb") as fh:
        fh.read()
out["small"] = time.perf_counter() - t0
if watched:
    out["files_seen"] = len(watch.stop())
print(json.dumps(out))
"""


def run(root: Path, big: Path, watched: bool) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(root), str(big), "1" if watched else "0"],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlops-files-") as tmp:
        root = Path(tmp)
        big = root / "big.bin"
        size = int(args.gib * (1 << 30))
        with open(big, "wb") as fh:
            block = os.urandom(1 << 20)
            for _ in range(size >> 20):
                fh.write(block)
        (root / "small").mkdir()
        for i in range(SMALL_FILES):
            (root / "small" / f"{i:05}.txt").write_bytes(b"x" * 100)
        plain: dict[str, list[float]] = {}
        watched: dict[str, list[float]] = {}
        seen = 0
        for _ in range(args.rounds):  # taking turns, so drift in the machine hits both
            for into, on in ((plain, False), (watched, True)):
                result = run(root, big, on)
                seen = int(result.pop("files_seen", seen))
                for key, value in result.items():
                    into.setdefault(key, []).append(value)
    print(f"file reads with the file watch on vs a plain process ({args.rounds} rounds, medians)")
    print(
        f"  the watch kept {seen} of the {SMALL_FILES + 1} files opened (a cell keeps at most "
        f"{MAX_FILES}; every open went through the hook)"
    )
    labels = {
        "blocks": f"read {args.gib:g} GiB in 1 MiB blocks",
        "fromfile": f"numpy.fromfile {args.gib:g} GiB",
        "small": f"open+read {SMALL_FILES} small files",
    }
    for key, label in labels.items():
        a, b = median(plain[key]), median(watched[key])
        print(
            f"  {label:<34} plain {a * 1000:8.1f} ms   watched {b * 1000:8.1f} ms   "
            f"ratio {b / a:5.3f}x ({(b / a - 1) * 100:+.1f} %)"
        )
    big_ratio = median(watched["blocks"]) / median(plain["blocks"])
    print(
        f"  goal: a 1 GiB read slowed by < {GOAL_PERCENT:g} %: "
        + ("met" if (big_ratio - 1) * 100 < GOAL_PERCENT else "not met")
    )


if __name__ == "__main__":
    main()
