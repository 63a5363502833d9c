"""The capture's queue: each request's tensors copied into the queued columns of its signature
(names, dtypes, instance shapes) and written as one record batch per signature per flush.
Requests of several signatures interleaved, every dtype the queue keeps as raw bytes, views
that are not contiguous, arrays changed after they were captured, and a full queue: every
value reads back as it was when the request was answered, in the order requests came."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from jupyter_mlops.serving.capture_store import CaptureWriter, read_stats, stream_batches

Tensors = dict[str, np.ndarray]
#: (inputs, outputs) of the i-th request of one signature
Make = Callable[[int], tuple[Tensors, Tensors]]


def rows_of(directory: Path) -> list[dict[str, Any]]:
    """Every captured request, as written: its ids, and per tensor its values and dtype."""
    rows = []
    for path in sorted(directory.glob("capture-*.arrows")):
        for batch in stream_batches(path):
            tensors = {}
            for field in batch.schema:
                if field.name[:3] in ("in.", "out"):
                    dtype = np.dtype(field.metadata[b"dtype"].decode())
                    tensors[field.name] = (batch.column(field.name).to_pylist(), dtype)
            for i, rid in enumerate(batch.column("request_id").to_pylist()):
                row = {"request_id": rid, "version": batch.column("version")[i].as_py()}
                row.update({name: (v[i], d) for name, (v, d) in tensors.items()})
                rows.append(row)
    return rows


def written(directory: Path, requests: list[tuple[str, Tensors, Tensors]], **settings: Any) -> None:
    writer = CaptureWriter(directory, {"max_bytes": "1GB", **settings}, interval=3600)
    try:
        for rid, inputs, outputs in requests:
            writer.add("1", "mlflow", 0.001, inputs, outputs, rid)
    finally:
        writer.close()


def check(row: dict[str, Any], inputs: Tensors, outputs: Tensors) -> None:
    for kind, tensors in (("in", inputs), ("out", outputs)):
        for name, a in tensors.items():
            values, dtype = row[f"{kind}.{name}"]
            assert dtype == a.dtype, name
            shaped = a.reshape(1) if a.ndim == 0 else a
            expect = shaped.reshape(len(shaped), -1).tolist() if shaped.ndim > 1 else shaped
            got = [np.asarray(v).reshape(-1).tolist() for v in values]
            assert got == [np.asarray(e).reshape(-1).tolist() for e in expect], name


SIGNATURES: dict[str, Make] = {
    "float32 rows": lambda i: (
        {"x": np.full((1, 4), i, np.float32)},
        {"label": np.array([i], np.int64), "p": np.full((1, 3), i / 3, np.float32)},
    ),
    "a batch of 5, another width": lambda i: (
        {"x": np.arange(30, dtype=np.float32).reshape(5, 6) + i},
        {"label": np.arange(5, dtype=np.int64) * i, "p": np.full((5, 3), i, np.float32)},
    ),
    "big-endian float64 and booleans": lambda i: (
        {"x": np.arange(8, dtype=">f8").reshape(2, 4) * i},
        {"label": np.array([i % 2 == 0, True]), "p": np.full((2, 3), i, ">f8")},
    ),
    "a view that is not contiguous": lambda i: (
        {"x": (np.arange(24, dtype=np.float32).reshape(3, 8) + i)[:, ::2]},
        {"label": np.arange(9, dtype=np.int32)[::3], "p": np.full((3, 6), i, np.float32)[:, 1:4]},
    ),
    "no batch axis": lambda i: (
        {"x": np.array(float(i), np.float32)},
        {"label": np.array(i, np.int64), "p": np.full(3, i, np.float32)},
    ),
    "strings and unsigned ints": lambda i: (
        {"x": np.array([f"text {i}", "zürich"], dtype=object)},
        {"label": np.array([i, 255], np.uint8), "p": np.full((2, 1), i, np.int16)},
    ),
}


def test_interleaved_signatures_read_back_as_answered(tmp_path: Path) -> None:
    kinds = list(SIGNATURES)
    order = [kinds[(i * 7 + i // 3) % len(kinds)] for i in range(120)]  # runs and switches
    requests = []
    for i, kind in enumerate(order):
        inputs, outputs = SIGNATURES[kind](i)
        requests.append((f"{kind}/{i}", inputs, outputs))
    written(tmp_path, requests)
    rows = rows_of(tmp_path)
    assert len(rows) == len(requests)
    by_id = {row["request_id"]: row for row in rows}
    for rid, inputs, outputs in requests:
        check(by_id[rid], inputs, outputs)
    # in the order they came, within each signature
    for kind in kinds:
        mine = [r["request_id"] for r in rows if r["request_id"].startswith(kind + "/")]
        assert mine == [rid for rid, *_ in requests if rid.startswith(kind + "/")]
    assert read_stats(tmp_path)["written"] == len(requests)


def test_a_0d_array_and_a_1d_array_are_two_signatures(tmp_path: Path) -> None:
    """Both have no instance shape; only one has a batch axis, of length 3 here."""
    scalar = ({"x": np.array(1.0, np.float32)}, {"y": np.array(2.0, np.float32)})
    vector = ({"x": np.arange(3, dtype=np.float32)}, {"y": np.arange(3, dtype=np.float32)})
    written(tmp_path, [("s0", *scalar), ("v0", *vector), ("s1", *scalar), ("v1", *vector)])
    rows = {r["request_id"]: r for r in rows_of(tmp_path)}
    assert rows["s1"]["in.x"][0] == [[1.0]]
    assert rows["v1"]["in.x"][0] == [[0.0], [1.0], [2.0]]


def test_arrays_changed_after_the_answer_are_captured_as_answered(tmp_path: Path) -> None:
    """A model may reuse its output buffers: the capture keeps what was answered."""
    x = np.ones((2, 3), np.float32)
    y = np.zeros((2, 1), np.float32)
    writer = CaptureWriter(tmp_path, {"max_bytes": "1GB"}, interval=3600)
    try:
        for i in range(3):
            x[:] = i
            y[:] = -i
            writer.add("1", "mlflow", 0.001, {"x": x}, {"y": y}, f"r{i}")
    finally:
        writer.close()
    rows = {r["request_id"]: r for r in rows_of(tmp_path)}
    for i in range(3):
        assert rows[f"r{i}"]["in.x"][0] == [[float(i)] * 3] * 2
        assert rows[f"r{i}"]["out.y"][0] == [[float(-i)]] * 2


@pytest.mark.parametrize("second", ["same", "other"])
def test_a_full_queue_counts_what_it_refused_and_writes_the_rest(
    tmp_path: Path, second: str
) -> None:
    """A queue of 4 KB holds two requests of 1,600 bytes; the third is refused, of the same
    signature or of a new one (which leaves no empty batch behind)."""
    big = ({"x": np.ones((100, 3), np.float32)}, {"y": np.ones((100, 1), np.float32)})
    other = ({"x": np.ones((100, 3), np.float64)}, {"y": np.ones((100, 1), np.float32)})
    third = big if second == "same" else other
    written(tmp_path, [("a", *big), ("b", *big), ("c", *third)], queue_bytes="4KB")
    assert [r["request_id"] for r in rows_of(tmp_path)] == ["a", "b"]
    stats = read_stats(tmp_path)
    assert stats["written"] == 2
    assert stats["dropped"]["queue_full"] == 1


def test_a_request_that_cannot_be_copied_costs_its_capture_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its input was copied before its output failed: the input is taken back, so the
    requests around it read back whole; the failure is counted, and never raised into the
    request."""
    from jupyter_mlops.serving import capture_arrow

    def no_memory(a: Any) -> Any:
        raise MemoryError("no room for a contiguous copy")

    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    y = np.arange(4, dtype=np.float32).reshape(2, 2)
    writer = CaptureWriter(tmp_path, {"max_bytes": "1GB"}, interval=3600)
    try:
        writer.add("1", "mlflow", 0.001, {"x": x}, {"y": y}, "r0")
        with monkeypatch.context() as patched:
            patched.setattr(capture_arrow.np, "ascontiguousarray", no_memory)
            strided = np.arange(8, dtype=np.float32).reshape(2, 4)[:, ::2]
            writer.add("1", "mlflow", 0.001, {"x": x + 1}, {"y": strided}, "r1")
        writer.add("1", "mlflow", 0.001, {"x": x + 2}, {"y": y + 2}, "r2")
        writer.add("1", "mlflow", 0.001, {"x": x + 3}, {"y": [[1, 2], [3, 4]]}, "r3")  # type: ignore[dict-item]
        writer.add("1", "mlflow", 0.001, {"x": x + 4}, {"y": y + 4}, "r4")
    finally:
        writer.close()
    rows = rows_of(tmp_path)
    assert [r["request_id"] for r in rows] == ["r0", "r2", "r4"]
    for row, k in zip(rows, (0, 2, 4), strict=True):
        check(row, {"x": x + k}, {"y": y + k})
    stats = read_stats(tmp_path)
    assert stats["written"] == 3
    assert stats["dropped"]["write_error"] == 2


def test_batch_sizes_that_change_and_a_renamed_tensor(tmp_path: Path) -> None:
    """Requests of one signature in batches of 1, 3 and 2 in turn, and one whose input has
    the same dtype and shape under another name (its own signature): each reads back with
    its own number of instances, under its own name."""
    sizes = [1, 3, 1, 2, 2, 3, 1]
    requests = [
        (f"r{i}", {"x": np.full((n, 4), i, np.float32)}, {"y": np.full((n, 2), -i, np.int64)})
        for i, n in enumerate(sizes)
    ]
    # the shapes of the request before it: only its name tells them apart
    renamed = ("z", {"z": np.full((2, 4), 9, np.float32)}, {"y": np.full((2, 2), 9, np.int64)})
    written(tmp_path, [*requests[:4], renamed, *requests[4:]])
    rows = {r["request_id"]: r for r in rows_of(tmp_path)}
    assert len(rows) == len(requests) + 1
    for rid, inputs, outputs in requests:
        check(rows[rid], inputs, outputs)
    assert "in.x" not in rows["z"]
    check(rows["z"], renamed[1], renamed[2])


def test_requests_after_a_flush_read_back_whole_in_the_emptied_queue(tmp_path: Path) -> None:
    """A flush empties each signature's queue for its next requests, its buffers keeping
    their memory: the requests queued after it, fewer and smaller than before, read back as
    answered, with nothing left of the flush before; a signature with strings (queued as
    arrays) too."""
    rounds = [[5, 5, 5, 4], [1], [3, 2], [6]]
    expected = []
    writer = CaptureWriter(tmp_path, {"max_bytes": "1GB"}, interval=3600)
    try:
        for r, sizes in enumerate(rounds):
            for j, n in enumerate(sizes):
                k = 10 * r + j
                numbers = ({"x": np.full((n, 4), k, np.float32)}, {"y": np.arange(n) + k})
                words = np.array([f"w{k}.{i}" for i in range(n)], dtype=object)
                texts = ({"x": words}, {"y": np.full((n, 2), k, np.int16)})
                for rid, (inputs, outputs) in ((f"n{k}", numbers), (f"t{k}", texts)):
                    writer.add("1", "mlflow", 0.001, inputs, outputs, rid)
                    expected.append((rid, inputs, outputs))
            writer.flush()
    finally:
        writer.close()
    rows = rows_of(tmp_path)  # each flush writes one record batch per signature
    assert sorted(r["request_id"] for r in rows) == sorted(rid for rid, _, _ in expected)
    by_id = {r["request_id"]: r for r in rows}
    for rid, inputs, outputs in expected:
        check(by_id[rid], inputs, outputs)


def test_a_queue_still_read_is_not_emptied() -> None:
    """A record batch of the queue reads its buffers in place: while one is alive, the queue
    refuses to be emptied for reuse, and the batch keeps its values."""
    from jupyter_mlops.serving.capture_arrow import Pending

    x, y = np.arange(8, dtype=np.float32).reshape(2, 4), np.array([3, 4])
    queue = Pending({"x": x}, {"y": y})
    queue.add(0.0, "1", "mlflow", 0.001, "r0", {"x": x}, {"y": y})
    batch = queue.record_batch()
    assert not queue.reset()
    assert batch.column("in.x").to_pylist() == [x.tolist()]
    assert queue.rows == 1
    del batch
    assert queue.reset()
    assert queue.rows == 0
    queue.add(0.0, "1", "mlflow", 0.001, "r1", {"x": x[:1] + 1}, {"y": y[:1]})
    assert queue.record_batch().column("in.x").to_pylist() == [[(x[0] + 1).tolist()]]


def test_a_queue_that_held_far_less_than_it_grew_to_is_not_kept() -> None:
    """The memory a queue keeps for reuse follows the traffic down: once it held under a
    quarter of what its buffers grew to, it is let go."""
    from jupyter_mlops.serving.capture_arrow import Pending

    x, y = np.zeros((8, 4), np.float32), np.zeros(8, np.int64)
    queue = Pending({"x": x}, {"y": y})
    queue.add(0.0, "1", "mlflow", 0.001, "big", {"x": x}, {"y": y})
    assert queue.reset()
    queue.add(0.0, "1", "mlflow", 0.001, "small", {"x": x[:1]}, {"y": y[:1]})
    assert not queue.reset()
