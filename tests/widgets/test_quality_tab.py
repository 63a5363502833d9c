"""Quality tab: a deployed iris classifier's labelled quality beside its version's, the
policy's thresholds highlighted, the confusion matrix, why the policy acted, the audit
button; and what it says before there is anything to show."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from jupyter_mlops.config import Settings, load_settings
from jupyter_mlops.monitoring.labels import log_labels
from jupyter_mlops.monitoring.monitor import monitor
from jupyter_mlops.serving import manager
from jupyter_mlops.widgets import Panel
from jupyter_mlops.widgets._figure import MIME
from tests.conftest import wait_for_capture
from tests.monitoring.conftest import iris_project  # noqa: F401  (a fixture)
from tests.monitoring.iris import send_named, split
from tests.widgets.conftest import text_of

pytestmark = pytest.mark.slow


def _panel(settings: Settings) -> Any:
    panel = Panel({}, settings=settings, tab="quality", live_every=None)
    panel.wait()
    return panel


def test_labelled_quality_thresholds_confusion_reasons_and_audit(iris_project: Settings) -> None:  # noqa: F811
    (iris_project.project_dir / "mlops.yaml").write_text(
        "monitoring:\n  drift_share: 1.0\n  actions: [alert]\n  quality: {accuracy_drop: 0.1}\n"
    )
    settings = load_settings(iris_project.project_dir)
    panel = _panel(settings)
    try:
        tab = panel.quality
        assert [o[0] for o in tab.deployment.options] == ["(no deployment yet)"]

        _, x_test, _, y_test = split()
        d = manager.deploy("iris@champion", name="prod", settings=settings)
        ids = send_named(d.url, x_test, "q", batch=5)
        wait_for_capture("prod", settings, len(ids))
        tab.refresh()
        panel.wait()
        assert tab.deployment.value == "prod"
        assert "never monitored: run Monitor on it" in text_of(tab.summary.value)

        monitor("prod", "1h", settings=settings)
        tab.show()
        panel.wait()
        said = text_of(tab.summary.value)
        assert "no labelled rows in its newest check" in said
        assert "jupyter mlops labels prod FILE.csv" in said
        assert tab.figure.figure is None

        # half the labels disagree with the model: accuracy falls past the threshold
        wrong = ((y_test[30:] + 1) % 3).tolist()
        log_labels("prod", ids, [*y_test[:30].tolist(), *wrong], settings=settings)
        checked = monitor("prod", "1h", settings=settings)
        assert checked.triggered and checked.quality is not None
        tab.show()
        panel.wait()
        view = tab.view
        assert view is not None and view.run_id == checked.run_id and view.labelled_rows == 60
        accuracy = next(q for q in view.lines if q.metric == "accuracy")
        assert accuracy.window == pytest.approx(checked.quality["metrics"]["accuracy"])
        assert accuracy.version == pytest.approx(checked.quality["baseline"]["accuracy"])
        assert accuracy.threshold == "accuracy_drop 0.1" and accuracy.breached
        said = text_of(tab.summary.value)
        assert "prod" in said and "iris v2, 60 labelled rows" in said
        assert f"{accuracy.window:.3f}" in said and f"{accuracy.change:+.3f}" in said
        assert "the policy acted:" in said and "accuracy fell by" in said
        # the breached row is shaded, the others are not
        shaded = tab.summary.value.count("background:color-mix")
        assert shaded == sum(q.breached for q in view.lines) == 1
        [heatmap] = tab.figure.widget.outputs[0]["data"][MIME]["data"]
        assert heatmap["type"] == "heatmap"
        assert sum(map(sum, heatmap["z"])) == 60

        tab.audit_button.click()
        panel.wait()
        assert tab.audited is not None
        html_path = Path(tab.audited.html)
        assert html_path.is_file() and html_path.parent == settings.project_dir / "audits"
        assert f"audits/{html_path.name}" in text_of(tab.links.value)
        assert "iris" in html_path.read_text()
    finally:
        panel.close()


def test_audit_before_a_check_says_what_to_do(iris_project: Settings) -> None:  # noqa: F811
    panel = _panel(iris_project)
    try:
        tab = panel.quality
        tab.audit_button.click()
        panel.wait()
        assert (
            tab.worker.failed
            and "pick a deployment that has been monitored first" in tab.worker.text
        )
        assert tab.audited is None
    finally:
        panel.close()
