"""Small formatting helpers both renderers share, so the HTML and the Markdown agree."""

from __future__ import annotations

import datetime
import json
from typing import Any

from .facts import AuditFacts, RunFacts

#: metrics of a monitor run shown as columns; quality.* metrics are added when present
MONITOR_COLUMNS = ("rows", "drift.share_drifted", "drift.columns_drifted", "latency_p95_ms")
_MONITOR_HEADERS = ("rows", "share drifted", "columns drifted", "p95 latency (ms)")


def monitor_headers(quality: list[str]) -> list[str]:
    return [*_MONITOR_HEADERS, *(k.removeprefix("quality.") for k in quality)]


def subtitle(facts: AuditFacts) -> str:
    """How the version was named, and when and from where the report was made."""
    if facts.request is not None:
        asked = f"the version that answered request {facts.request.request_id}"
    elif facts.alias:
        asked = f"{facts.model}@{facts.alias}"
    else:
        asked = f"{facts.model}/{facts.version}"
    return f"Audit of {asked}, generated {facts.generated} from the {facts.store}."


def when(ms: int | None) -> str:
    if not ms:
        return ""
    moment = datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def utc(text: str) -> str:
    """An ISO time as every other time of the report reads: ``...Z``."""
    return text.replace("+00:00", "Z")


def number(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value).lower()
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def duration(run: RunFacts) -> str:
    seconds = run.metrics.get("mlops.duration_s")
    if seconds is None and run.start_time and run.end_time:
        seconds = (run.end_time - run.start_time) / 1000
    return "" if seconds is None else f"{seconds:.2f} s"


def short(text: str | None, width: int = 12) -> str:
    return (text or "")[:width]


def plain(value: Any) -> str:
    """A value of a request (a number, a list of them, a string) as one line of text."""
    if isinstance(value, (list, dict)):
        return json.dumps(value, default=str)
    return number(value)


def forced(move: dict[str, Any]) -> bool:
    return move.get("gates") == "forced"


def quality_keys(runs: list[RunFacts]) -> list[str]:
    """Top-level quality metrics of monitor runs (``quality.accuracy``, not per class)."""
    keys = {k for r in runs for k in r.metrics if k.startswith("quality.") and k.count(".") == 1}
    keys.discard("quality.labelled_rows")
    return sorted(keys)


def monitor_tag(run: RunFacts, key: str) -> str:
    try:
        value = json.loads(run.tags.get(key, "[]"))
    except ValueError:
        return run.tags.get(key, "")
    return ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)


def headline(facts: AuditFacts) -> list[tuple[str, str]]:
    """The summary rows at the top of the report."""
    rows = [
        ("model", facts.model),
        ("version", f"v{facts.version} ({facts.version_status})"),
        ("aliases now", ", ".join(facts.version_aliases) or "none"),
        (
            "trained in",
            {"pipeline": "a pipeline", "notebook": "a notebook"}.get(facts.origin, "unknown"),
        ),
        (
            "gates",
            "; ".join(f"{g.alias}: {g.verdict}" for g in facts.gates) or "never checked",
        ),
        (
            "forced moves",
            str(sum(1 for m in facts.moves if forced(m) and m.get("to_version") == facts.version)),
        ),
        ("deployments", ", ".join(d["id"] for d in facts.deployments) or "none"),
        ("monitor runs", str(len(facts.monitoring))),
        ("alerts", str(len(facts.alerts))),
        ("store", facts.store),
    ]
    if facts.request is not None:
        rows.insert(0, ("request", f"{facts.request.request_id} via {facts.request.deployment}"))
    return rows


def lineage_sentence(facts: AuditFacts) -> str:
    """Which of the cells produced the model, with the params and files along the way."""
    found = facts.lineage
    cells = len(found.get("cells") or ())
    text = f"{cells} of these {len(facts.cells)} cells led to the packaged model"
    params = found.get("params") or []
    if params:
        text += f"; params set along the way: {', '.join(params)}"
    files = found.get("files") or []
    if files:
        text += "; files read: " + ", ".join(
            f"{f['path']} ({f['version'].split(':')[0]} bytes)" for f in files
        )
    return text + "."
