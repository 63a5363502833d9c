"""Capture segments written with O_DIRECT under heavy traffic: every message padded to whole
blocks reads unchanged with Arrow's own reader, quiet traffic goes back to buffered writes, a
file system refusing O_DIRECT is written buffered, and a writer killed mid-flush leaves a readable
prefix of what it was given."""

from __future__ import annotations

import errno
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from jupyter_mlops.serving import capture_store
from jupyter_mlops.serving.capture_store import BLOCK, CaptureWriter, stream_batches

ROWS, WIDTH, OUT = 64, 64, 10


def request(i: int) -> tuple[np.ndarray, np.ndarray]:
    """The i-th request's input and output: known from i alone, so a reader can check them."""
    x = (np.arange(ROWS * WIDTH, dtype=np.float32).reshape(ROWS, WIDTH) + i) / 7
    return x, x[:, :OUT] * 2


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("capture-*.arrows"))


def direct_files(directory: Path) -> set[str]:
    """Segments this process holds open with O_DIRECT."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
            flags = Path(f"/proc/self/fdinfo/{fd}").read_text().split("flags:")[1].split()[0]
        except (OSError, IndexError):
            continue
        if target.startswith(str(directory)) and int(flags, 8) & os.O_DIRECT:
            found.add(Path(target).name)
    return found


def read_rows(directory: Path) -> list[tuple[str, np.ndarray, np.ndarray]]:
    rows = []
    for path in segments(directory):
        for batch in stream_batches(path):
            ids = batch.column("request_id").to_pylist()
            ins = batch.column("in.input").to_pylist()
            outs = batch.column("out.output").to_pylist()
            for rid, x, y in zip(ids, ins, outs, strict=True):
                rows.append((rid, np.asarray(x, np.float32), np.asarray(y, np.float32)))
    return rows


def supports_direct(directory: Path) -> bool:
    probe = directory / "probe"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o600)
    except OSError:
        return False
    os.close(fd)
    probe.unlink()
    return True


def test_heavy_flushes_are_block_aligned_and_read_unchanged(tmp_path: Path) -> None:
    directory = tmp_path / "capture"
    writer = CaptureWriter(directory, {"max_bytes": "1GB"}, interval=3600)
    try:
        for i in range(300):  # 5.7 MB in one flush
            x, y = request(i)
            writer.add("1", "mlflow", 0.001, {"input": x}, {"output": y}, f"r{i}")
        writer.flush()
        heavy = segments(directory)
        assert len(heavy) == 1
        direct = supports_direct(tmp_path)
        assert direct_files(directory) == ({heavy[0].name} if direct else set())
        for i in range(300, 302):  # 39 kB: quiet traffic, written through the page cache
            x, y = request(i)
            writer.add("1", "mlflow", 0.001, {"input": x[:1]}, {"output": y[:1]}, f"r{i}")
        writer.flush()
    finally:
        writer.close()
    files = segments(directory)
    assert len(files) == (2 if direct else 1)
    if direct:
        assert files[0].stat().st_size % BLOCK == 0
    # Arrow's own reader, whole files, end marker included
    tables = [pa.ipc.open_stream(pa.memory_map(str(p))).read_all() for p in files]
    assert sum(t.num_rows for t in tables) == 302
    rows = read_rows(directory)
    assert [r[0] for r in rows] == [f"r{i}" for i in range(302)]
    for i, (_, x, y) in enumerate(rows):
        want_x, want_y = request(i)
        if i >= 300:
            want_x, want_y = want_x[:1], want_y[:1]
        np.testing.assert_array_equal(x.reshape(want_x.shape), want_x)
        np.testing.assert_array_equal(y.reshape(want_y.shape), want_y)
    assert writer.written == 302
    assert sum(writer.dropped.values()) == 0


def test_direct_segments_stay_under_the_cap_and_count_what_it_removed(tmp_path: Path) -> None:
    directory = tmp_path / "capture"
    cap = 4 * 1024 * 1024
    writer = CaptureWriter(directory, {"max_bytes": cap}, interval=3600)
    try:
        for flush in range(30):  # 30 flushes of 1.1 MB, each past DIRECT_FROM
            for i in range(flush * 60, flush * 60 + 60):
                x, y = request(i)
                writer.add("1", "mlflow", 0.001, {"input": x}, {"output": y}, f"r{i}")
            writer.flush()
            on_disk = sum(p.stat().st_size for p in segments(directory))
            assert on_disk <= cap, (flush, on_disk)
    finally:
        writer.close()
    rows = read_rows(directory)
    kept = [int(r[0][1:]) for r in rows]
    # the newest requests, in order, and every one removed counted as removed
    assert kept == list(range(1800 - len(kept), 1800)) and len(kept) > 0
    assert writer.written == 1800
    assert writer.dropped["max_bytes"] == 1800 - len(kept)
    assert sum(p.stat().st_size for p in segments(directory)) <= cap


def test_a_file_system_refusing_direct_io_is_written_buffered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    refused = []

    def refuse(fd: int) -> None:  # as a file system without O_DIRECT answers
        refused.append(fd)
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(capture_store, "_set_direct", refuse)
    directory = tmp_path / "capture"
    writer = CaptureWriter(directory, {"max_bytes": "1GB"}, interval=3600)
    try:
        for batch in range(3):
            for i in range(batch * 100, batch * 100 + 100):
                x, y = request(i)
                writer.add("1", "mlflow", 0.001, {"input": x}, {"output": y}, f"r{i}")
            writer.flush()
        assert direct_files(directory) == set()
    finally:
        writer.close()
    assert len(refused) == 1  # asked once, then remembered
    assert [r[0] for r in read_rows(directory)] == [f"r{i}" for i in range(300)]
    assert (writer.written, sum(writer.dropped.values())) == (300, 0)


WRITER = textwrap.dedent(
    """
    import sys
    import time
    from pathlib import Path
    sys.path.insert(0, {root!r})
    from tests.serving.test_capture_direct import request
    from jupyter_mlops.serving.capture_store import CaptureWriter

    writer = CaptureWriter(Path({directory!r}), {{"max_bytes": "2GB"}}, interval=0.05)
    for i in range(100_000):
        x, y = request(i)
        writer.add("1", "mlflow", 0.001, {{"input": x}}, {{"output": y}}, f"r{{i}}")
        if i % 200 == 199:
            while writer.written <= i - 200:  # a flush or two behind, not more
                time.sleep(0.001)
            print(writer.written, flush=True)
    """
)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_writer_killed_mid_flush_leaves_a_readable_prefix(tmp_path: Path, seed: int) -> None:
    directory = tmp_path / "capture"
    script = WRITER.format(root=str(Path(__file__).parents[2]), directory=str(directory))
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=tmp_path
    )
    try:
        assert proc.stdout is not None
        for _ in range(random.Random(seed).randint(3, 12)):  # 600 to 2,400 requests queued
            line = proc.stdout.readline()
            assert line, "the writer process ended early"
        written = int(line)
        time.sleep(random.Random(seed).random() * 0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    rows = read_rows(directory)
    # a prefix of what it was given, in order, each row whole and as sent: none doubled, none
    # it had counted as written missing
    assert len(rows) >= written > 0
    assert [r[0] for r in rows] == [f"r{i}" for i in range(len(rows))]
    for i in (0, len(rows) // 2, len(rows) - 1):
        want_x, want_y = request(i)
        np.testing.assert_array_equal(rows[i][1].reshape(want_x.shape), want_x)
        np.testing.assert_array_equal(rows[i][2].reshape(want_y.shape), want_y)
