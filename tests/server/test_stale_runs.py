"""GET runs carries ``stale`` and ``stale_reason`` per run, pending and stored."""

from __future__ import annotations

import hashlib
import os
import time
from typing import Any

from jupyter_mlops.config import Settings
from jupyter_mlops.tracking.dataflow import DataflowTracker, analyse
from tests.conftest import drain

from .conftest import Api, Session


def _cell(session: Session, tracker: DataflowTracker, cell_id: str, source: str, ns: dict) -> str:
    """A journal record as the kernel's recorder writes it, dataflow tags included."""
    session.count += 1
    start = int(time.time() * 1000) + session.count  # distinct, increasing start times
    record_id = os.urandom(16).hex()
    source_hash = hashlib.sha1(source.encode()).hexdigest()
    exec(source, ns)  # the cell's effect on the namespace the recorder looks at
    flow = tracker.observe(
        analyse(source),
        record_id=record_id,
        cell_id=cell_id,
        source_hash=source_hash,
        namespace=ns,
        params=[n for n in ("lr",) if n in analyse(source).binds],
    )
    session.writer.append(
        {
            "type": "cell",
            "id": record_id,
            "session": session.id,
            "start": start,
            "end": start,
            "time": start,
            "duration_s": 0.0,
            "execution_count": session.count,
            "cell_id": cell_id,
            "source": source,
            "source_hash": source_hash,
            "status": "FINISHED",
            "params": {},
            "metrics": [],
            "tags": flow.tags(),
        }
    )
    return record_id


async def test_runs_answer_marks_stale_runs_with_the_reason(api: Api, served: Settings) -> None:
    session = Session(served, "stale.ipynb")
    tracker = DataflowTracker()
    ns: dict[str, Any] = {}
    _cell(session, tracker, "c1", "lr = 0.1", ns)
    uses = _cell(session, tracker, "c2", "w = lr * 2", ns)
    other = _cell(session, tracker, "c3", "k = 3", ns)
    _cell(session, tracker, "c1", "lr = 0.2", ns)

    response, page = await api("GET", "runs", params={"notebook": "stale.ipynb"})
    assert response.code == 200
    rows = {r["record_id"]: r for r in page["pending"]}
    assert rows[uses]["stale"] is True
    assert rows[uses]["stale_reason"].startswith("param lr changed: cell [4]")
    assert rows[other]["stale"] is False and rows[other]["stale_reason"] is None

    session.end()
    drain(served.project_dir)
    response, page = await api("GET", "runs", params={"notebook": "stale.ipynb"})
    rows = {r["record_id"]: r for r in page["runs"]}
    assert rows[uses]["stale"] is True and "re-run with new source" in rows[uses]["stale_reason"]
    assert rows[other]["stale"] is False
