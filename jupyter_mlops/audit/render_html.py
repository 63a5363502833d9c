"""The audit as one self-contained HTML file: inline CSS (light and dark), no network.

Images are data URIs; plotly figures, when a run logged any, are drawn by plotly.js inlined
once in the page (from the installed plotly package), so the file still opens offline.
"""

from __future__ import annotations

import json
from html import escape
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

_CSS = """
:root { color-scheme: light dark; --bg: #ffffff; --fg: #1f2328; --muted: #59636e;
  --line: #d1d9e0; --head: #f6f8fa; --code: #f6f8fa; --accent: #0969da;
  --ok: #1a7f37; --bad: #cf222e; --warn: #9a6700; --mark: #fff8c5; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #0d1117; --fg: #e6edf3; --muted: #9198a1; --line: #3d444d;
    --head: #151b23; --code: #151b23; --accent: #4493f8; --ok: #3fb950; --bad: #f85149;
    --warn: #d29922; --mark: #2e2a16; }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 14px/1.5 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; }
main { max-width: 1100px; margin: 0 auto; padding: 24px 28px 64px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 36px 0 10px; padding-bottom: 6px;
  border-bottom: 1px solid var(--line); }
h3 { font-size: 15px; margin: 22px 0 8px; }
p.meta, .muted { color: var(--muted); }
nav { margin: 12px 0 8px; display: flex; flex-wrap: wrap; gap: 6px 14px; font-size: 13px; }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 14px; font-size: 13px; }
.scroll { overflow-x: auto; margin: 6px 0 14px; }
.scroll table { margin: 0; }
th, td { border: 1px solid var(--line); padding: 5px 8px; text-align: left;
  vertical-align: top; overflow-wrap: break-word; }
th { background: var(--head); font-weight: 600; white-space: nowrap; }
table.kv th { white-space: normal; }
table.kv th { width: 200px; }
tr.this td { background: var(--mark); }
code, pre { font: 12px/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
code { background: var(--code); padding: 1px 4px; border-radius: 4px; }
pre { background: var(--code); border: 1px solid var(--line); border-radius: 6px;
  padding: 10px 12px; overflow-x: auto; white-space: pre-wrap; margin: 4px 0 12px; }
.pass, .passed { color: var(--ok); font-weight: 600; }
.fail, .refused, .forced, .alert { color: var(--bad); font-weight: 600; }
.warn { color: var(--warn); font-weight: 600; }
.badge { display: inline-block; padding: 0 8px; border-radius: 10px; font-size: 12px;
  border: 1px solid currentColor; font-weight: 600; }
details { margin: 6px 0; }
summary { cursor: pointer; }
.cell { border-left: 3px solid var(--line); padding-left: 10px; margin: 10px 0; }
.cell .head { font-size: 12px; color: var(--muted); }
.cell.failed { border-left-color: var(--bad); }
img.artifact { max-width: min(100%, 640px); background: #fff; border: 1px solid var(--line);
  border-radius: 6px; }
.figure { width: 100%; min-height: 380px; }
@media print { nav { display: none; } details { display: block; } }
"""

_FIGURES = """
(function () {
  var dark = window.matchMedia && window.matchMedia('(prefers-color-scheme: dark)').matches;
  document.querySelectorAll('script.figure-data').forEach(function (node) {
    var fig = JSON.parse(node.textContent);
    var layout = fig.layout || {};
    Object.keys(layout).concat(['xaxis', 'yaxis']).forEach(function (key) {
      if (/^[xy]axis\\d*$/.test(key)) {  // long category names must not be cut off
        layout[key] = Object.assign({automargin: true}, layout[key] || {});
        if (dark) { Object.assign(layout[key], {gridcolor: '#3d444d', zerolinecolor: '#59636e',
                                                linecolor: '#59636e'}); }
      }
    });
    if (dark) {
      layout.paper_bgcolor = '#0d1117'; layout.plot_bgcolor = '#0d1117';
      layout.font = Object.assign({}, layout.font || {}, {color: '#e6edf3'});
    }
    var div = document.getElementById(node.dataset.target);
    if (window.Plotly) { Plotly.newPlot(div, fig.data, layout, {displaylogo: false}); }
  });
})();
"""


_PASS = '<span class="pass">pass</span>'
_FAIL = '<span class="fail">FAIL</span>'


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _code(value: Any) -> str:
    return f"<code>{_e(value)}</code>" if value not in (None, "") else ""


def _table(header: list[str], rows: list[list[str]], classes: list[str] | None = None) -> str:
    """``rows`` are HTML already (escaped by the caller)."""
    if not rows:
        return '<p class="muted">(none recorded)</p>'
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{classes[i]}"' if classes and classes[i] else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>")
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    return f'<div class="scroll">{table}</div>'


def _kv(rows: list[tuple[str, str]]) -> str:
    """Key/value rows; values are HTML already."""
    body = "".join(f"<tr><th>{_e(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return f'<table class="kv"><tbody>{body}</tbody></table>'


def _pairs(values: dict[str, Any]) -> str:
    return _table(["name", "value"], [[_code(k), _e(number(v))] for k, v in sorted(values.items())])


def _verdict(text: str) -> str:
    cls = {"passed": "pass", "no gates": "muted"}.get(text, text.replace(" ", "-"))
    return f'<span class="badge {_e(cls)}">{_e(text)}</span>'


def _run(title: str, run: RunFacts) -> str:
    rows = [
        ("run", f"{_code(run.run_id)} {_e(run.name)}"),
        ("experiment", _e(run.experiment)),
        ("status", _e(run.status)),
        ("started", _e(when(run.start_time))),
        ("duration", _e(duration(run))),
    ]
    if run.source_name:
        rows.append(("source", _code(run.source_name)))
    if run.error:
        rows.append(("error", f'<span class="fail">{_e(run.error)}</span>'))
    parts = [f"<h3>{_e(title)}</h3>", _kv(rows)]
    if run.params:
        parts.append(f"<details open><summary>Parameters ({len(run.params)})</summary>")
        parts += [_pairs(run.params), "</details>"]
    metrics = {k: v for k, v in run.metrics.items() if k != "mlops.duration_s"}
    if metrics:
        parts.append(f"<details open><summary>Metrics ({len(metrics)})</summary>")
        parts += [_pairs(metrics), "</details>"]
    if run.tags:
        parts.append(f"<details><summary>Tags ({len(run.tags)})</summary>")
        parts += [_pairs(run.tags), "</details>"]
    return "".join(parts)


def _section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{_e(title)}</h2>{body}</section>'


def _request(facts: AuditFacts) -> str:
    r = facts.request
    assert r is not None
    rows = [
        ("request id", _code(r.request_id)),
        ("deployment", _e(r.deployment)),
        ("time", _e(r.time)),
        ("served by", f"<strong>{_e(facts.model)} v{_e(r.version)}</strong>"),
        ("protocol", _e(r.protocol)),
        ("latency", _e(f"{number(r.latency_ms)} ms")),
        ("rows", _e(r.rows)),
        ("label (ground truth)", _e(plain(r.label)) if r.label is not None else "none yet"),
    ]
    inputs = _table(["column", "value"], [[_code(k), _e(plain(v))] for k, v in r.inputs.items()])
    outputs = _table(["column", "value"], [[_code(k), _e(plain(v))] for k, v in r.outputs.items()])
    return _kv(rows) + "<h3>Inputs</h3>" + inputs + "<h3>Outputs</h3>" + outputs


def _lineage(f: AuditFacts) -> str:
    parts = []
    if f.package is not None:
        parts.append(_run("Package run", f.package))
    if f.pipeline is not None:
        parts.append(_run("Pipeline run", f.pipeline))
    if f.steps:
        parts.append("<h3>Pipeline steps</h3>")
        parts.append(
            _table(
                ["step", "status", "notebook", "cache hit", "metrics", "run"],
                [
                    [_e(s.tags.get("mlops.step", s.name)), _e(s.status), _code(s.source_name),
                     _e(s.tags.get("mlops.cache_hit", "")),
                     _e(", ".join(f"{k}={number(v)}" for k, v in sorted(s.metrics.items()))),
                     _code(s.run_id)]
                    for s in f.steps
                ],
            )
        )  # fmt: skip
    if f.session is not None:
        parts.append(_run("Notebook session", f.session))
    if f.cells:
        chain = set(f.lineage.get("cells") or ())
        parts.append(f"<h3>Cells that ran before packaging ({len(f.cells)})</h3>")
        if f.lineage:
            parts.append(f"<p>{_e(lineage_sentence(f))}</p>")
        for c in f.cells:
            failed = " failed" if c.status != "FINISHED" else ""
            label = f"[{c.execution_count}]" if c.execution_count else "cell"
            head = f"{_e(label)} {_e(c.status)} · {_e(duration(c))} · run {_code(c.run_id)}"
            if c.run_id in chain:
                head += " · <strong>in the model's lineage</strong>"
            error = f'<div class="fail">{_e(c.error)}</div>' if c.error else ""
            source = _e(c.source) if c.source is not None else "(source not recorded)"
            parts.append(
                f'<div class="cell{failed}"><div class="head">{head}</div>{error}'
                f"<pre>{source}</pre></div>"
            )
    if not parts:
        parts.append('<p class="muted">No source run is recorded for this version.</p>')
    return "".join(parts)


def _gates(f: AuditFacts) -> str:
    if not f.gates:
        return '<p class="muted">No gate was ever checked for this version.</p>'
    parts = []
    for g in f.gates:
        parts.append(f"<h3>{_e(g.alias)} {_verdict(g.verdict)}</h3>")
        rows = [
            [_e(x.get("gate", "")),
             _PASS if x.get("passed") else _FAIL,
             _e(x.get("evidence", ""))]
            for x in g.gates
        ]  # fmt: skip
        parts.append(_table(["gate", "result", "evidence"], rows))
    return "".join(parts)


def _moves(f: AuditFacts) -> str:
    rows, classes = [], []
    for m in f.moves:
        mine = f.version in (m.get("from_version"), m.get("to_version"))
        classes.append("this" if mine else "")
        rows.append(
            [_e(utc(m["when"])), _e(m["who"]), _e(m["alias"]), _e(m["from_version"] or "—"),
             _e(m["to_version"] or "—"), _e(m["kind"]), _verdict(m["gates"]),
             '<span class="forced">forced</span>' if forced(m) else "no", _e(m["reason"])]
        )  # fmt: skip
    note = '<p class="muted">Rows that move this version are highlighted.</p>' if rows else ""
    header = ["when", "who", "alias", "from", "to", "kind", "verdict", "forced", "reason"]
    return note + _table(header, rows, classes)


def _monitoring(f: AuditFacts) -> str:
    quality = quality_keys(f.monitoring)
    rows = []
    for r in f.monitoring:
        alert = r.tags.get("mlops.alert") == "true"
        rows.append(
            [_e(when(r.start_time)), _e(r.tags.get("mlops.deployment", "")),
             _e(r.tags.get("mlops.window", "")),
             *(_e(number(r.metrics.get(k))) for k in (*MONITOR_COLUMNS, *quality)),
             '<span class="alert">alert</span>' if alert else "no",
             _e(monitor_tag(r, "mlops.alert_reasons")), _e(monitor_tag(r, "mlops.actions"))]
        )  # fmt: skip
    header = ["time", "deployment", "window", *monitor_headers(quality), "alert", "reasons"]
    parts = [_table([*header, "actions"], rows), "<h3>Alerts</h3>"]
    parts.append(
        _table(
            ["time", "deployment", "drifted", "columns", "reasons", "actions"],
            [
                [_e(utc(a.get("time", ""))), _e(a.get("deployment", "")),
                 _e(number(a.get("share_drifted"))),
                 _e(", ".join(a.get("drifted_columns", [])[:8])),
                 _e(", ".join(a.get("reasons", []))), _e(", ".join(a.get("actions", [])))]
                for a in f.alerts
            ],
        )
    )  # fmt: skip
    return "".join(parts)


def _script_json(text: str) -> str:
    return text.replace("</", "<\\/")


def _analysis(f: AuditFacts) -> tuple[str, bool]:
    if not f.analysis:
        return (
            '<p class="muted">No attribution, fairness or slice results were recorded on '
            "these runs.</p>",
            False,
        )
    parts, figures = [], 0
    for a in f.analysis:
        parts.append(f'<h3>{_e(a.label)}</h3><p class="muted">run {_code(a.run)}</p>')
        if a.metrics:
            parts.append(_pairs(a.metrics))
        for art in a.artifacts:
            title = f"<div><code>{_e(art.path)}</code></div>"
            if art.kind == "image":
                parts.append(
                    f'{title}<img class="artifact" alt="{_e(art.path)}" src="{_e(art.content)}">'
                )
            elif art.kind == "figure":
                figures += 1
                target = f"figure-{figures}"
                parts.append(
                    f'{title}<div class="figure" id="{target}"></div>'
                    f'<script type="application/json" class="figure-data" data-target="{target}">'
                    f"{_script_json(art.content)}</script>"
                )
            elif art.kind == "text":
                parts.append(
                    f"<details><summary>{_e(art.path)}</summary><pre>{_e(art.content)}</pre></details>"
                )
            else:
                size = f" ({art.size} bytes)" if art.size else ""
                parts.append(f'{title}<p class="muted">kept in the run{_e(size)}</p>')
    return "".join(parts), figures > 0


def _plotly_js() -> str:
    try:
        from plotly.offline import get_plotlyjs
    except ImportError:  # figures stay as their JSON; the page still opens
        return ""
    return str(get_plotlyjs())


def render_html(facts: AuditFacts) -> str:
    f = facts
    sections: list[tuple[str, str, str]] = []
    if f.request is not None:
        sections.append(("request", "The request", _request(f)))
    sections.append(
        (
            "deployments",
            "Deployments serving this version",
            _table(
                ["id", "spec", "status", "url", "traffic"],
                [
                    [_e(d["id"]), _e(d["spec"]), _e(d["status"]), _code(d["url"]),
                     _e(", ".join(f"v{v}: {w:.0%}" for v, w in sorted(d["weights"].items())))]
                    for d in f.deployments
                ],
            ),
        )
    )  # fmt: skip
    parity = f.parity or {}
    sections.append(
        (
            "version",
            "The version",
            _kv(
                [
                    ("created", _e(when(f.version_created))),
                    ("source", _code(f.version_source)),
                    ("aliases now", _e(", ".join(f.version_aliases) or "none")),
                    (
                        "parity passed",
                        _e(number(parity.get("passed"))) if parity else "not checked",
                    ),
                    ("parity max abs diff", _e(number(parity.get("max_abs_diff")))),
                    ("parity tolerance", _e(number(parity.get("tolerance")))),
                ]
            ),
        )
    )
    sections.append(("lineage", "Lineage: how it was made", _lineage(f)))
    sections.append(
        (
            "datasets",
            "Datasets",
            _table(
                ["name", "digest", "rows", "context", "used by"],
                [[_e(d["name"]), _code(d["digest"]), _e(d.get("rows") or ""),
                  _e(d.get("context", "")), _e(", ".join(d["runs"]))] for d in f.datasets],
            ),
        )
    )  # fmt: skip
    env = [("git commit", _code(f.git_commit) if f.git_commit else "not recorded")]
    env += [(k, _e(v)) for k, v in sorted(f.environment.items())]
    sections.append(("environment", "Code and environment", _kv(env)))
    sections.append(("gates", "Gate verdicts", _gates(f)))
    sections.append(("history", f"Alias history of {f.model}", _moves(f)))
    sections.append(("monitoring", "Monitoring", _monitoring(f)))
    analysis, has_figures = _analysis(f)
    sections.append(("analysis", "Explanations and fairness", analysis))
    if f.notes:
        items = "".join(f"<li>{_e(n)}</li>" for n in f.notes)
        sections.append(("notes", "Notes", f"<ul>{items}</ul>"))
    nav = "".join(f'<a href="#{a}">{_e(t)}</a>' for a, t, _ in sections)
    summary = _kv([(k, _e(v)) for k, v in headline(f)])
    body = "".join(_section(a, t, b) for a, t, b in sections)
    scripts = ""
    if has_figures:
        scripts = f"<script>{_plotly_js()}</script><script>{_FIGURES}</script>"
    title = f"Audit: {f.model} v{f.version}"
    meta = json.dumps({"model": f.model, "version": f.version, "generated": f.generated})
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="jupyter-mlops-audit" content="{_e(meta)}">'
        f"<style>{_CSS}</style></head><body><main>"
        f"<h1>{_e(title)}</h1>"
        f'<p class="meta">{_e(subtitle(f))}</p>'
        f"<nav>{nav}</nav>{summary}{body}</main>{scripts}</body></html>\n"
    )
