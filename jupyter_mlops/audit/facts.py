"""What an audit report states, as plain data: every renderer reads the same ``AuditFacts``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class RunFacts:
    """One MLflow run in the chain (package, step, pipeline, session, cell, monitor...)."""

    run_id: str
    kind: str
    name: str
    experiment: str
    status: str
    start_time: int | None
    end_time: int | None
    source_name: str = ""
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    datasets: list[dict[str, Any]] = field(default_factory=list)
    #: a cell's full source (secrets masked)
    source: str | None = None
    execution_count: str | None = None
    error: str | None = None


@dataclass
class GateVerdict:
    """The latest gate check of this version for one alias (a version tag)."""

    alias: str
    verdict: str
    gates: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Artifact:
    """An artifact worth showing: an attribution, a fairness table, a figure."""

    run_id: str
    path: str
    #: image (``content`` a data URI), text (``content`` the text), figure (plotly JSON),
    #: or listed (too big or binary: named only)
    kind: str
    content: str = ""
    size: int | None = None


@dataclass
class AnalysisFacts:
    """Explanations and fairness found on one run: its matching metrics and artifacts."""

    run: str
    label: str
    metrics: dict[str, float] = field(default_factory=dict)
    artifacts: list[Artifact] = field(default_factory=list)


@dataclass
class RequestFacts:
    """One captured prediction, as the deployment's capture holds it."""

    request_id: str
    deployment: str
    time: str
    version: str
    protocol: str
    latency_ms: float | None
    inputs: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    rows: int = 1
    label: Any = None


@dataclass
class AuditFacts:
    """Everything the report says about one model version, from its deployment back."""

    generated: str
    subject: str
    model: str
    version: str
    alias: str | None
    store: str
    version_status: str = ""
    version_created: int | None = None
    version_source: str = ""
    version_aliases: list[str] = field(default_factory=list)
    model_aliases: dict[str, str] = field(default_factory=dict)
    request: RequestFacts | None = None
    deployments: list[dict[str, Any]] = field(default_factory=list)
    package: RunFacts | None = None
    parity: dict[str, Any] = field(default_factory=dict)
    #: pipeline, notebook or unknown: where the version was trained
    origin: str = "unknown"
    pipeline: RunFacts | None = None
    steps: list[RunFacts] = field(default_factory=list)
    session: RunFacts | None = None
    cells: list[RunFacts] = field(default_factory=list)
    #: the cell runs whose writes led to the packaged model (``%mlops lineage``): their run
    #: ids, the params set along the way and the files read; empty when not recorded
    lineage: dict[str, Any] = field(default_factory=dict)
    datasets: list[dict[str, Any]] = field(default_factory=list)
    git_commit: str | None = None
    environment: dict[str, str] = field(default_factory=dict)
    gates: list[GateVerdict] = field(default_factory=list)
    moves: list[dict[str, Any]] = field(default_factory=list)
    monitoring: list[RunFacts] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    analysis: list[AnalysisFacts] = field(default_factory=list)
    #: what could not be found or read, said plainly in the report
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AuditReport:
    """Where ``audit()`` wrote the report, and the facts it holds."""

    html: str
    markdown: str
    facts: AuditFacts

    def summary(self) -> str:
        f = self.facts
        lines = [
            f"audit of {f.model} v{f.version} written to {self.html}",
            f"  and {self.markdown}",
        ]
        if f.request is not None:
            lines.append(f"  request {f.request.request_id} was answered by v{f.version}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"html": self.html, "markdown": self.markdown, "facts": self.facts.to_dict()}
