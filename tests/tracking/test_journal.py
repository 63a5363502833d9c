"""The journal keeps complete records, tolerates torn and garbage lines, and locks."""

from __future__ import annotations

from pathlib import Path

from jupyter_mlops.tracking.journal import (
    DrainState,
    FileLock,
    JournalPaths,
    JournalWriter,
    is_locked,
    read_records,
)


def test_append_and_read_back_skip_torn_and_garbage(tmp_path: Path) -> None:
    paths = JournalPaths.for_session(tmp_path, "s1")
    writer = JournalWriter(paths)
    writer.append({"type": "a", "n": 1})
    writer.append({"type": "b", "n": 2})
    writer.close()
    with open(paths.journal, "ab") as fh:
        fh.write(b"not json\n")
        fh.write(b'{"type": "torn"')  # a kernel killed mid-write
    records = read_records(paths.journal, 0)
    assert [r["type"] for _, r in records] == ["a", "b"]
    offset = records[0][0]
    assert [r["type"] for _, r in read_records(paths.journal, offset)] == ["b"]
    with open(paths.journal, "ab") as fh:
        fh.write(b', "n": 3}\n')
    assert [r["type"] for _, r in read_records(paths.journal, records[-1][0])] == ["torn"]


def test_state_round_trip_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "s.state.json"
    assert DrainState.load(path) == DrainState()
    state = DrainState(offset=10, session_run_id="r", pending={"x": "y"})
    state.save(path)
    assert DrainState.load(path) == state
    path.write_text("{broken")
    assert DrainState.load(path) == DrainState()


def test_locks(tmp_path: Path) -> None:
    lock = FileLock(tmp_path / "k.lock")
    assert not is_locked(lock.path)
    assert lock.acquire()
    assert is_locked(lock.path)
    assert not FileLock(lock.path).acquire(timeout=0.1)
    lock.release()
    assert not is_locked(lock.path)
