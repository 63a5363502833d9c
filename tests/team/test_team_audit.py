"""The audit of a version trained in a tracked notebook, against whatever store the `project`
fixture points at: the per-test SQLite file, or under scripts/team-tests.sh a shared MLflow
tracking server on PostgreSQL whose artifacts are served (``mlflow-artifacts:``)."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_iris

from jupyter_mlops import store
from jupyter_mlops.analysis.evaluate import evaluate
from jupyter_mlops.analysis.inputs import describe
from jupyter_mlops.audit import audit
from tests.conftest import (
    TEAM_SERVER,
    cell_text,
    drain,
    execute_notebook,
    settings_for,
    write_notebook,
)

pytestmark = [pytest.mark.slow, pytest.mark.team]


def test_an_audit_traces_a_version_on_the_store_back_to_its_training_run(
    project: Path,
) -> None:
    name = f"iris-{uuid.uuid4().hex[:8]}"
    cells = [
        "%load_ext jupyter_mlops",
        "import numpy as np\nfrom sklearn.datasets import load_iris\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "features = load_iris(as_frame=True).frame.drop(columns='target')\n"
        "labels = load_iris().target\nX = features.to_numpy(dtype=np.float32)",
        "C = 0.5\nmax_iter = 400\n"
        "model = LogisticRegression(C=C, max_iter=max_iter).fit(X, labels)\n"
        "test_accuracy = float(model.score(X, labels))",
        "import jupyter_mlops\n"
        f"packaged = jupyter_mlops.package(model, X[:5], name={name!r}, reference=features)\n"
        "print('version', jupyter_mlops.register(packaged).version)",
    ]
    nb = execute_notebook(write_notebook(project / f"{name}.ipynb", cells), timeout=300)
    assert "version 1" in cell_text(nb.cells[3]), cell_text(nb.cells[3])
    drain(project)
    settings = settings_for(project)
    if TEAM_SERVER:
        assert settings.tracking_uri == TEAM_SERVER and not settings.is_embedded
    # an evaluation with artifacts (a confusion matrix image, a slices table), which the
    # audit reads back from the store's artifact repository
    data = load_iris(as_frame=True).frame
    data["region"] = np.where(np.arange(len(data)) % 2 == 0, "north", "south")
    evaluated = evaluate(f"models:/{name}/1", data, slices=["region"], explain=False,
                         settings=settings)  # fmt: skip
    package_run = store.client(settings).get_model_version(name, "1").run_id
    [page] = [line for line in describe(evaluated, settings).splitlines() if "report: " in line]
    if TEAM_SERVER:  # the server holds the artifacts: the page is named by its URI
        assert page.startswith("  report: mlflow-artifacts:/"), page
    else:
        assert (project / page.removeprefix("  report: ")).is_file(), page
    assert page.endswith(f"{evaluated.run_id}/artifacts/evaluation.html"), page

    report = audit(f"{name}/1", settings=settings)

    f = report.facts
    assert (f.model, f.version, f.origin) == (name, "1", "notebook"), f.notes
    assert f.package is not None and f.package.run_id == package_run
    [training] = [c for c in f.cells if "LogisticRegression(C=C" in (c.source or "")]
    assert training.params == {"C": "0.5", "max_iter": "400"}
    assert training.metrics["test_accuracy"] > 0.9
    evaluation = next(a for a in f.analysis if a.run == evaluated.run_id)
    kinds = {a.path: a.kind for a in evaluation.artifacts}
    assert kinds["confusion_matrix.png"] == "image" and kinds["slices.json"] == "text"
    html = Path(report.html).read_text(encoding="utf-8")
    md = Path(report.markdown).read_text(encoding="utf-8")
    for text in (html, md):
        assert name in text and package_run in text and training.run_id in text
        assert "max_iter" in text and "400" in text
    assert 'src="data:image/png;base64,' in html
    assert not [n for n in f.notes if "cannot" in n or "could not" in n], f.notes
