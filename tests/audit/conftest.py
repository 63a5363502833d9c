"""One real project for the audit tests, built once: a notebook trains and packages two
iris models in a tracked kernel, both are registered, v1 is promoted through its gates and
v2 is refused by them and then forced in with a reason; v2 is evaluated with a slice column
(fairness) and attributions."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest

from jupyter_mlops import store
from jupyter_mlops.config import Settings, load_settings
from jupyter_mlops.registry.service import PromotionRefused, promote
from tests.conftest import (
    ENV_KEYS,
    TEAM_SERVER,
    cell_text,
    drain,
    execute_notebook,
    stdout_lines,
    stop_deployments,
    write_notebook,
)

GATES = {"metrics": {"test_accuracy": ">= 0.8"}, "parity": True, "beat_current": "test_accuracy"}
#: a secret the notebook holds: it must reach no report
SECRET = "hunter2-Xq9v7Lr3Tz"
#: secrets that reach the store (a tag, a promotion's reason) and the report must mask
STORED_SECRET = "s3cr3t-Pw-Kd82jQ"
FIRST_REASON = f"first model, trained on postgresql://audit:{STORED_SECRET}@db.internal/iris"
FORCE_REASON = "the calibrated model is needed for the partner launch"

CELLS = [
    "%load_ext jupyter_mlops",
    "import numpy as np\nimport pandas as pd\nfrom sklearn.datasets import load_iris\n"
    "from sklearn.linear_model import LogisticRegression\n"
    "features = load_iris(as_frame=True).frame.drop(columns='target')\n"
    "labels = load_iris().target",
    f"db_url = 'postgresql://audit:{SECRET}@db.internal:5432/iris'",
    "X = features.to_numpy(dtype=np.float32)\nC = 1.0\n"
    "model = LogisticRegression(C=C, max_iter=500).fit(X, labels)\n"
    "test_accuracy = float(model.score(X, labels))",
    "import jupyter_mlops\n"
    "first = jupyter_mlops.package(model, X[:5], name='iris', reference=features)\n"
    "print(jupyter_mlops.register(first).version)",
    "C = 0.001\nweak = LogisticRegression(C=C, max_iter=500).fit(X, labels)\n"
    "test_accuracy = float(weak.score(X, labels))",
    "second = jupyter_mlops.package(weak, X[:5], name='iris', reference=features)\n"
    "print(jupyter_mlops.register(second).version)",
]


def _evaluation_results(settings: Settings, run_id: str) -> None:
    """A real evaluation of v2 with a slice column (fairness) and attributions; beside it,
    what an older analysis left on the package run itself."""
    import numpy as np
    from sklearn.datasets import load_iris

    from jupyter_mlops.analysis.evaluate import evaluate

    client = store.client(settings)
    client.set_tag(run_id, "warehouse_password", STORED_SECRET)
    client.log_metric(run_id, "fairness.demographic_parity_difference", 0.07)
    client.log_dict(run_id, {"slice": "region", "accuracy": {"north": 0.68}}, "fairness/old.json")
    data = load_iris(as_frame=True).frame
    data["region"] = np.where(np.arange(len(data)) % 2 == 0, "north", "south")
    result = evaluate("models:/iris/2", data, slices=["region"], explain_rows=20, settings=settings)
    return str(result.run_id)


@pytest.fixture(scope="package")
def audited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """The project, its working directory and environment set as the ``project`` fixture
    sets them; deployments a test starts are stopped at the end."""
    root = tmp_path_factory.mktemp("audit") / "project"
    root.mkdir()
    (root / "mlops.yaml").write_text("")
    with pytest.MonkeyPatch.context() as mp:
        for key in ENV_KEYS:
            mp.delenv(key, raising=False)
        if TEAM_SERVER:
            mp.setenv("MLFLOW_TRACKING_URI", TEAM_SERVER)
            mp.setenv("MLFLOW_REGISTRY_URI", TEAM_SERVER)
        mp.chdir(root)
        subprocess.run(["git", "init", "-q"], cwd=root, check=True)
        subprocess.run(
            ["git", "-c", "user.name=a", "-c", "user.email=a@example.com", "commit", "-q",
             "--allow-empty", "-m", "start"], cwd=root, check=True,
        )  # fmt: skip
        nb = execute_notebook(write_notebook(root / "train.ipynb", CELLS), timeout=300)
        assert "1" in stdout_lines(nb.cells[4]), cell_text(nb.cells[4])
        assert "2" in stdout_lines(nb.cells[6]), cell_text(nb.cells[6])
        drain(root)
        settings = load_settings(root)
        promote("iris", 1, "champion", FIRST_REASON, gates=GATES, settings=settings)
        with pytest.raises(PromotionRefused):
            promote("iris", 2, "champion", gates=GATES, settings=settings)
        promote("iris", 2, "champion", FORCE_REASON, gates=GATES, force=True, settings=settings)
        run_id = store.client(settings).get_model_version("iris", "2").run_id
        _evaluation_results(settings, run_id)
        try:
            yield settings
        finally:
            try:
                stop_deployments(settings)
            finally:
                store.forget_clients()


def gate_tag(settings: Settings, version: str) -> dict[str, object]:
    tags = store.client(settings).get_model_version("iris", version).tags
    return dict(json.loads(tags["mlops.gate.champion"]))
