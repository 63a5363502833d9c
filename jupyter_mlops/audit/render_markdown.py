"""The audit as Markdown: the same sections as the HTML, for a review, a ticket or git."""

from __future__ import annotations

from typing import Any

from ._text import (
    MONITOR_COLUMNS,
    duration,
    forced,
    headline,
    lineage_sentence,
    monitor_headers,
    monitor_tag,
    number,
    plain,
    quality_keys,
    subtitle,
    utc,
    when,
)
from .facts import AuditFacts, RunFacts


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    if not rows:
        return ["(none recorded)", ""]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return [*lines, ""]


def _pairs(values: dict[str, Any]) -> list[str]:
    return _table(["name", "value"], [[f"`{k}`", number(v)] for k, v in sorted(values.items())])


def _run(title: str, run: RunFacts) -> list[str]:
    lines = [
        f"### {title}",
        "",
        f"- run: `{run.run_id}` ({run.name}) in experiment `{run.experiment}`",
        f"- status: {run.status}, started {when(run.start_time)}, {duration(run)}".rstrip(", "),
    ]
    if run.source_name:
        lines.append(f"- source: `{run.source_name}`")
    if run.error:
        lines.append(f"- error: {run.error}")
    lines.append("")
    if run.params:
        lines += ["Parameters:", "", *_pairs(run.params)]
    metrics = {k: v for k, v in run.metrics.items() if k != "mlops.duration_s"}
    if metrics:
        lines += ["Metrics:", "", *_pairs(metrics)]
    return lines


def _fence(text: str, lang: str = "") -> list[str]:
    fence = "````" if "```" in text else "```"
    return [f"{fence}{lang}", text.rstrip("\n"), fence, ""]


def render_markdown(facts: AuditFacts) -> str:
    f = facts
    out = [
        f"# Audit: {f.model} v{f.version}",
        "",
        subtitle(f),
        "",
        *_table(["", ""], [[k, v] for k, v in headline(f)]),
    ]
    if f.request is not None:
        r = f.request
        out += ["## The request", ""]
        out += _table(
            ["field", "value"],
            [
                ["request id", f"`{r.request_id}`"],
                ["deployment", r.deployment],
                ["time", r.time],
                ["served by", f"v{r.version}"],
                ["protocol", r.protocol],
                ["latency", f"{number(r.latency_ms)} ms"],
                ["rows", r.rows],
                ["label (ground truth)", plain(r.label) if r.label is not None else "none yet"],
            ],
        )
        out += [
            "Inputs:",
            "",
            *_table(["column", "value"], [[k, plain(v)] for k, v in r.inputs.items()]),
        ]
        out += [
            "Outputs:",
            "",
            *_table(["column", "value"], [[k, plain(v)] for k, v in r.outputs.items()]),
        ]
    out += ["## Deployments serving this version", ""]
    out += _table(
        ["id", "spec", "status", "url", "traffic"],
        [
            [d["id"], d["spec"], d["status"], d["url"],
             ", ".join(f"v{v}: {w:.0%}" for v, w in sorted(d["weights"].items()))]
            for d in f.deployments
        ],
    )  # fmt: skip
    out += ["## The version", ""]
    out += _table(
        ["field", "value"],
        [
            ["created", when(f.version_created)],
            ["source", f"`{f.version_source}`"],
            ["aliases now", ", ".join(f.version_aliases) or "none"],
            ["parity passed", number(f.parity.get("passed")) if f.parity else "not checked"],
            ["parity max abs diff", number(f.parity.get("max_abs_diff"))],
        ],
    )
    out += ["## Lineage", ""]
    if f.package is not None:
        out += _run("Package run", f.package)
    if f.pipeline is not None:
        out += _run("Pipeline run", f.pipeline)
    if f.steps:
        out += ["### Pipeline steps", ""]
        out += _table(
            ["step", "status", "notebook", "cache hit", "metrics", "run"],
            [
                [s.tags.get("mlops.step", s.name), s.status, s.source_name,
                 s.tags.get("mlops.cache_hit", ""),
                 ", ".join(f"{k}={number(v)}" for k, v in sorted(s.metrics.items())),
                 f"`{s.run_id}`"]
                for s in f.steps
            ],
        )  # fmt: skip
    if f.session is not None:
        out += _run("Notebook session", f.session)
    if f.cells:
        chain = set(f.lineage.get("cells") or ())
        out += [f"### Cells that ran before packaging ({len(f.cells)})", ""]
        if f.lineage:
            out += [lineage_sentence(f), ""]
        for c in f.cells:
            label = f"[{c.execution_count}]" if c.execution_count else "cell"
            mark = " · **in the model's lineage**" if c.run_id in chain else ""
            out.append(f"**{label}** {c.status}, {duration(c)}, run `{c.run_id}`{mark}")
            if c.error:
                out.append(f"error: {c.error}")
            out += ["", *_fence(c.source or "(source not recorded)", "python")]
    out += ["## Datasets", ""]
    out += _table(
        ["name", "digest", "rows", "context", "used by"],
        [[d["name"], f"`{d['digest']}`", d.get("rows") or "", d.get("context", ""),
          ", ".join(d["runs"])] for d in f.datasets],
    )  # fmt: skip
    out += ["## Code and environment", ""]
    out += _table(
        ["name", "value"],
        [["git commit", f"`{f.git_commit}`" if f.git_commit else "not recorded"]]
        + [[k, v] for k, v in sorted(f.environment.items())],
    )
    out += ["## Gate verdicts", ""]
    if not f.gates:
        out += ["No gate was ever checked for this version.", ""]
    for g in f.gates:
        out += [f"### {g.alias}: {g.verdict}", ""]
        out += _table(
            ["gate", "result", "evidence"],
            [[x.get("gate", ""), "pass" if x.get("passed") else "FAIL", x.get("evidence", "")]
             for x in g.gates],
        )  # fmt: skip
    out += [f"## Alias history of {f.model}", ""]
    out += _table(
        ["when", "who", "alias", "from", "to", "kind", "verdict", "forced", "reason"],
        [
            [utc(m["when"]), m["who"], m["alias"], m["from_version"] or "", m["to_version"] or "",
             m["kind"], m["gates"], "yes" if forced(m) else "no", m["reason"]]
            for m in f.moves
        ],
    )  # fmt: skip
    out += ["## Monitoring", ""]
    quality = quality_keys(f.monitoring)
    out += _table(
        ["time", "deployment", "window", *monitor_headers(quality), "alert", "reasons", "actions"],
        [
            [when(r.start_time), r.tags.get("mlops.deployment", ""), r.tags.get("mlops.window", ""),
             *(number(r.metrics.get(k)) for k in (*MONITOR_COLUMNS, *quality)),
             r.tags.get("mlops.alert", ""), monitor_tag(r, "mlops.alert_reasons"),
             monitor_tag(r, "mlops.actions")]
            for r in f.monitoring
        ],
    )  # fmt: skip
    out += ["### Alerts", ""]
    out += _table(
        ["time", "deployment", "drifted", "columns", "reasons", "actions"],
        [
            [utc(a.get("time", "")), a.get("deployment", ""), number(a.get("share_drifted")),
             ", ".join(a.get("drifted_columns", [])[:8]), ", ".join(a.get("reasons", [])),
             ", ".join(a.get("actions", []))]
            for a in f.alerts
        ],
    )  # fmt: skip
    out += ["## Explanations and fairness", ""]
    if not f.analysis:
        out += ["No attribution, fairness or slice results were recorded on these runs.", ""]
    for a in f.analysis:
        out += [f"### {a.label}", "", f"run `{a.run}`", ""]
        if a.metrics:
            out += _pairs(a.metrics)
        for art in a.artifacts:
            if art.kind == "text":
                out += [f"`{art.path}`:", "", *_fence(art.content)]
            else:
                size = f" ({art.size} bytes)" if art.size else ""
                out += [f"- artifact `{art.path}`{size}: {art.kind} (see the HTML report)", ""]
    if f.notes:
        out += ["## Notes", "", *(f"- {n}" for n in f.notes), ""]
    return "\n".join(out).rstrip() + "\n"
