"""When a job runs: cron expressions checked with croniter (what jupyter-scheduler reads them
with) and ``--every 15m`` written as one."""

from __future__ import annotations

import datetime
import re
from typing import Any

from ..exceptions import MlopsError

_EVERY = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
#: the shortest interval: a job starts a kernel, which takes seconds on a busy machine
MIN_SECONDS = 10


class ScheduleError(MlopsError):
    """A schedule cannot be made, found or removed; the message says why."""


def _croniter() -> Any:
    try:
        from croniter import croniter
    except ImportError:  # it comes with jupyter-scheduler
        raise ScheduleError(
            "schedules need jupyter-scheduler: pip install 'jupyter-mlops[schedule]'"
        ) from None
    return croniter


def check_cron(expression: str) -> str:
    """``expression`` stripped, if croniter reads it; five fields (minute hour day month
    weekday) or six, the sixth being seconds."""
    croniter = _croniter()

    text = " ".join(expression.split())
    try:
        croniter(text)
    except (ValueError, KeyError) as err:  # croniter's errors are ValueErrors
        raise ScheduleError(
            f"cron expression {expression!r} does not parse: {err} "
            '(five fields: minute hour day month weekday, e.g. "0 3 * * *" for 03:00 daily)'
        ) from None
    return text


def every_to_cron(every: str) -> tuple[str, float]:
    """``15m`` as the cron expression ``*/15 * * * *`` and the interval in seconds.

    The interval must divide its unit's cycle (seconds and minutes 60, hours 24) so that the
    runs are evenly spaced, as cron restarts each field's steps at the top of the next one.
    """
    match = _EVERY.match(every)
    if not match:
        raise ScheduleError(f"--every {every!r}: expected a number and s, m, h or d, e.g. 15m")
    n, unit = int(match.group(1)), match.group(2)
    seconds = n * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
    if seconds < MIN_SECONDS:
        raise ScheduleError(f"--every {every!r}: the shortest interval is {MIN_SECONDS}s")
    cycle = {"s": 60, "m": 60, "h": 24, "d": 1}[unit]
    if unit == "d" and n != 1:
        raise ScheduleError(f"--every {every!r}: days other than 1d need --cron")
    if unit != "d" and (n > cycle or cycle % n):
        divisors = ", ".join(f"{d}{unit}" for d in range(1, cycle) if cycle % d == 0)
        raise ScheduleError(
            f"--every {every!r}: {n}{unit} does not divide {'a day' if unit == 'h' else 'a cycle'}"
            f" evenly; use one of {divisors} or --cron"
        )
    if unit != "d" and n == cycle:  # 60m is 1h, 60s is 1m, 24h is 1d
        return every_to_cron({"s": "1m", "m": "1h", "h": "1d"}[unit])[0], seconds
    expression = {
        "s": f"* * * * * */{n}",
        "m": f"*/{n} * * * *",
        "h": f"0 */{n} * * *",
        "d": "0 0 * * *",
    }[unit]
    return expression.replace("*/1 ", "* "), seconds


def next_run(expression: str, after: datetime.datetime | None = None) -> datetime.datetime:
    """The first time after ``after`` (default now, UTC) that ``expression`` names."""
    croniter = _croniter()

    start = after or datetime.datetime.now(datetime.timezone.utc)
    result: datetime.datetime = croniter(expression, start).get_next(datetime.datetime)
    return result
