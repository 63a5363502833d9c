"""The audit of a real packaged, registered, gated and force-promoted model."""

from __future__ import annotations

import re
from pathlib import Path

from jupyter_mlops import store
from jupyter_mlops.audit import audit
from jupyter_mlops.config import Settings
from tests.audit.conftest import FORCE_REASON, SECRET, STORED_SECRET


def test_the_report_traces_the_version_back_to_its_cells(audited: Settings) -> None:
    report = audit("iris@champion", settings=audited)
    html = Path(report.html).read_text(encoding="utf-8")
    md = Path(report.markdown).read_text(encoding="utf-8")
    assert Path(report.html).parent == audited.project_dir / "audits"
    f = report.facts
    assert (f.model, f.version, f.alias, f.origin) == ("iris", "2", "champion", "notebook")
    assert f.package is not None and f.package.kind == "package"
    assert f.session is not None and f.session.kind == "session"
    sources = [c.source or "" for c in f.cells]
    assert any("LogisticRegression(C=C, max_iter=500).fit(X, labels)" in s for s in sources)
    assert any(s.startswith("second = jupyter_mlops.package") for s in sources)
    # the cells that led to v2: the data, X, the weak model and the packaging; not db_url
    chain = [c for c in f.cells if c.run_id in f.lineage["cells"]]
    assert chain[-1].source.startswith("second = jupyter_mlops.package")
    assert any("weak = LogisticRegression" in (c.source or "") for c in chain)
    assert not any("db_url" in (c.source or "") for c in chain)
    assert "C" in f.lineage["params"]
    assert f"{len(chain)} of these {len(f.cells)} cells led to the packaged model" in md
    assert "in the model&#x27;s lineage" in html or "in the model's lineage" in html
    assert f.git_commit and len(f.git_commit) == 40
    assert f.environment["python"] and "mlflow" in f.environment
    assert any(d["name"] == "features" and d["digest"] for d in f.datasets)
    [gate] = f.gates
    assert gate.verdict == "forced"
    assert any(not g["passed"] and "beats current" in g["gate"] for g in gate.gates)
    assert [(m["to_version"], m["gates"], m["reason"]) for m in f.moves] == [
        ("1", "passed", "first model, trained on postgresql://audit:***@db.internal/iris"),
        ("2", "forced", FORCE_REASON),
    ]
    old, evaluation = f.analysis
    assert old.run == f.package.run_id
    assert old.metrics == {"fairness.demographic_parity_difference": 0.07}
    assert [(a.path, a.kind) for a in old.artifacts] == [("fairness/old.json", "text")]
    tags = store.client(audited).get_run(evaluation.run).data.tags
    assert tags["mlops.kind"] == "evaluation" and tags["mlops.evaluated_run_id"] == old.run
    assert evaluation.label.endswith("(evaluation run)")
    assert {"accuracy_score", "fairness_demographic_parity_difference"} <= set(evaluation.metrics)
    kinds = {a.path: a.kind for a in evaluation.artifacts}
    assert kinds["charts/importance.json"] == kinds["charts/slices.json"] == "figure"
    assert kinds["slices.json"] == "text" and kinds["confusion_matrix.png"] == "image"
    assert kinds["evaluation.html"] == "listed"  # a page of its own, with scripts: not inlined
    for text in (html, md):
        assert FORCE_REASON in text
        assert "test_accuracy" in text
        assert f.git_commit in text
        assert SECRET not in text and STORED_SECRET not in text
        assert "postgresql://audit:***@db.internal/iris" in text
    assert "db_url = '***'" in md  # the tracker kept it out of the store already
    assert f.package.tags["warehouse_password"] == "***"
    assert "fairness_equalized_odds_difference" in html and 'src="data:image/png;base64,' in html
    # offline: nothing is fetched, plotly.js (for the attribution figure) is in the page
    assert not re.search(r"<(?:script|link|img)\b[^>]*\b(?:src|href)=\"(?:https?:)?//", html)
    assert "<style>" in html and "prefers-color-scheme: dark" in html
    assert html.count("<script>") == 2 and "Plotly.newPlot" in html  # plotly.js once


def test_the_markdown_and_the_html_hold_the_same_sections(audited: Settings) -> None:
    report = audit("iris/1", settings=audited)
    html = Path(report.html).read_text(encoding="utf-8")
    md = Path(report.markdown).read_text(encoding="utf-8")
    for section in (
        "Deployments serving this version",
        "Lineage",
        "Datasets",
        "Code and environment",
        "Gate verdicts",
        "Alias history of iris",
        "Monitoring",
        "Explanations and fairness",
    ):
        assert section in html and section in md, section
    assert report.facts.alias is None and report.facts.version == "1"
    assert [g.verdict for g in report.facts.gates] == ["passed"]
    # v1's cells end with its own packaging: the second model's cells came later
    assert not any("weak" in (c.source or "") for c in report.facts.cells)
    assert report.facts.analysis == []
    assert "<script" not in html  # no figure: no plotly.js either
