"""A version packaged by a pipeline step: the audit shows the pipeline, its steps and the
cells of the step that trained it."""

from __future__ import annotations

from pathlib import Path

from jupyter_mlops.audit import audit
from jupyter_mlops.pipelines.runner import run_pipeline
from tests.conftest import drain, settings_for
from tests.pipelines.helpers import pipeline_file, step_notebook


def test_a_pipeline_trained_version_leads_to_its_steps(project: Path) -> None:
    step_notebook(
        project / "prepare.ipynb",
        "rows = 150",
        'import jupyter_mlops\njupyter_mlops.output("rows", rows)',
    )
    step_notebook(
        project / "train.ipynb",
        "rows = 0\nC = 1.0",
        "%load_ext jupyter_mlops",
        "import numpy as np\nfrom sklearn.datasets import load_iris\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "X, y = load_iris(return_X_y=True)\nX = X[:rows].astype(np.float32)\n"
        "model = LogisticRegression(C=C, max_iter=500).fit(X, y[:rows])",
        "import jupyter_mlops\n"
        "jupyter_mlops.register(jupyter_mlops.package(model, X[:5], name='piped'))",
    )
    path = pipeline_file(
        project / "pipeline.yaml",
        {
            "name": "iris-pipeline",
            "steps": {
                "prepare": {"notebook": "prepare.ipynb", "outputs": ["rows"]},
                "train": {"notebook": "train.ipynb", "params": {"rows": "${steps.prepare.rows}"}},
            },
        },
    )
    result = run_pipeline(path, progress=False)
    drain(project)
    report = audit("piped/1", settings=settings_for(project))
    f = report.facts
    assert f.origin == "pipeline" and f.session is None
    assert f.pipeline is not None and f.pipeline.run_id == result.run_id
    assert [s.tags["mlops.step"] for s in f.steps] == ["prepare", "train"]
    assert f.package is not None
    assert any("LogisticRegression(C=C" in (c.source or "") for c in f.cells)
    md = Path(report.markdown).read_text(encoding="utf-8")
    assert "### Pipeline steps" in md and "| prepare |" in md and "train.ipynb" in md
