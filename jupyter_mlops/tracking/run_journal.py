"""Run records of a process that is not a kernel, written the way cell records are.

A command such as a fully cached ``jupyter mlops run`` must not pay for importing MLflow
and opening its store to record what it did. It writes ``run`` records to a journal of
its own (each with an id the store is asked about, so a record becomes exactly one run)
and hands the journal to a writer process, which outlives the command. While records are
being written the journal's "kernel" lock is held, so no other writer closes it early; a
command killed before the hand-over leaves an orphan journal that the next writer or
``jupyter mlops flush`` drains.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from typing import Any

from ..config import Settings
from ..exceptions import MlopsError
from .drainer_client import start_writer
from .journal import FileLock, JournalPaths, JournalWriter, Record


def _now_ms() -> int:
    return int(time.time() * 1000)


class RunJournal:
    """Collect ``run`` records, then ``hand_over()`` them to a writer process."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.journal_id = uuid.uuid4().hex
        self.paths = JournalPaths.for_session(settings.journal_dir, self.journal_id)
        self._records: list[Record] = []

    def add(
        self,
        *,
        experiment: str,
        run_name: str,
        tags: dict[str, str],
        params: dict[str, str] | None = None,
        metrics: dict[str, float] | None = None,
        dicts: dict[str, Any] | None = None,
        status: str = "FINISHED",
        start: int | None = None,
        end: int | None = None,
        parent: str | None = None,
    ) -> str:
        """Queue one finished run; returns its record id (a child names it as ``parent``)."""
        record_id = uuid.uuid4().hex
        now = _now_ms()
        self._records.append(
            {
                "type": "run",
                "id": record_id,
                "journal": self.journal_id,
                "time": now,
                "experiment": experiment,
                "run_name": run_name,
                "parent": parent,
                "tags": tags,
                "params": params or {},
                "metrics": metrics or {},
                "dicts": dicts or {},
                "status": status,
                "start": start or now,
                "end": end or now,
            }
        )
        return record_id

    def hand_over(self) -> subprocess.Popen[bytes] | None:
        """Write the records to the journal and start a writer, returned; raise ``MlopsError``
        (and leave no journal behind) when the journal cannot be written. None when the writer
        could not start: the records then wait for the next one or ``jupyter mlops flush``."""
        lock = FileLock(self.paths.kernel_lock)
        try:
            lock.acquire(timeout=None)
            writer = JournalWriter(self.paths, max_waiting=0)
        except OSError as err:
            lock.release()
            raise MlopsError(f"cannot write the tracking journal ({err})") from err
        try:
            try:
                for record in self._records:
                    if not writer.append(record):
                        raise MlopsError(f"cannot write the tracking journal ({writer.error})")
            finally:
                writer.close()
        except BaseException:
            self.paths.remove()
            lock.release()
            raise
        try:
            return start_writer(self.settings, self.journal_id, stdin=subprocess.DEVNULL)
        except OSError:
            return None
        finally:
            # from here the writer (or, if it died, the next one) owns the journal
            lock.release()
