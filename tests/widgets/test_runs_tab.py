"""Runs tab: cell runs from a real kernel and a real pipeline run, filtered and compared."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from jupyter_mlops.pipelines.runner import run_pipeline
from jupyter_mlops.widgets import Panel
from jupyter_mlops.widgets._figure import MIME
from tests.conftest import drain, execute_notebook, settings_for, write_notebook
from tests.pipelines.helpers import pipeline_file, step_notebook
from tests.widgets.conftest import text_of

pytestmark = pytest.mark.slow


@pytest.fixture
def panel(project: Path) -> Any:
    execute_notebook(
        write_notebook(
            project / "explore.ipynb",
            [
                "%load_ext jupyter_mlops",
                "lr = 0.1\naccuracy = 0.8",
                "lr = 0.01\naccuracy = 0.9",
                'raise ValueError("boom")',
            ],
        )
    )
    drain(project)
    step_notebook(project / "square.ipynb", "x = 2", "y = x * x")
    spec = {"name": "squares", "params": {"x": 3}, "steps": {"square": {
        "notebook": "square.ipynb", "params": {"x": "${params.x}"}}}}  # fmt: skip
    run_pipeline(pipeline_file(project / "pipeline.yaml", spec), progress=False)
    built = Panel({}, settings=settings_for(project), live_every=None)
    built.wait()
    yield built
    built.close()


def _labels(tab: Any) -> list[str]:
    return [label.split(None, 2)[2] for label, _ in tab.list.options]


def test_lists_filters_and_compares_runs(panel: Any) -> None:
    tab = panel.runs
    assert _labels(tab) == [
        "pipeline squares x=3",
        'cell     [4] raise ValueError("boom") FAILED',
        "cell     [3] lr = 0.01",
        "cell     [2] lr = 0.1",
    ]
    assert "5 runs" not in tab.scope.value and "4 runs" in tab.scope.value

    tab.filter.value = "lr=0.1"
    tab.worker.wait()
    assert _labels(tab) == ["cell     [2] lr = 0.1"]
    tab.filter.value = ""
    tab.worker.wait()
    tab.status.value = "FAILED"
    tab.worker.wait()
    assert _labels(tab) == ['cell     [4] raise ValueError("boom") FAILED']
    tab.status.value = ""
    tab.worker.wait()
    tab.kind.value = "pipeline runs"
    tab.worker.wait()
    assert _labels(tab) == ["pipeline squares x=3"]
    tab.kind.value = "cell and pipeline runs"
    tab.worker.wait()

    tab.select([tab.list.options[0][1]])
    tab.compare_button.click()
    tab.worker.wait()
    assert tab.worker.failed
    assert tab.worker.text == "select two or more runs to compare"

    cells = [run_id for _, run_id in tab.list.options][2:4]
    tab.select(cells)
    tab.compare_button.click()
    tab.worker.wait()
    assert not tab.worker.failed, tab.worker.text
    assert tab.worker.text == "compared 2 runs: 1 metrics"
    params = text_of(tab.params.value)
    assert "lr 0.01 0.1" in " ".join(params.split())
    assert "background" in tab.params.value  # the differing param is shaded
    assert tab.comparison is not None and tab.comparison.metrics == {"accuracy": [0.9, 0.8]}
    (output,) = tab.figure.widget.outputs
    bars = [trace["y"] for trace in output["data"][MIME]["data"]]
    assert bars == [[0.9], [0.8]]
