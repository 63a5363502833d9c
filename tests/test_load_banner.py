"""What ``%load_ext jupyter_mlops`` says, and whether it exports ``MLFLOW_TRACKING_URI``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import TEAM_SERVER, cell_text, execute_notebook, write_notebook

pytestmark = pytest.mark.skipif(
    bool(TEAM_SERVER), reason="a team store sets MLFLOW_TRACKING_URI before the kernel starts"
)

NOTICE = (
    "jupyter-mlops: MLFLOW_TRACKING_URI set to the project store for this kernel "
    "(mlops.yaml tracking.export_tracking_uri: false to keep it unset)"
)
CELLS = [
    "%load_ext jupyter_mlops",
    "import os, subprocess, sys\n"
    "print('kernel:', os.environ.get('MLFLOW_TRACKING_URI'))\n"
    "child = subprocess.run([sys.executable, '-c', "
    "'import os; print(os.environ.get(\"MLFLOW_TRACKING_URI\"))'], capture_output=True, text=True)\n"
    "print('child:', child.stdout.strip())",
]


def test_the_banner_says_the_tracking_uri_is_exported(project: Path) -> None:
    out = execute_notebook(write_notebook(project / "nb.ipynb", CELLS))
    uri = f"sqlite:///{project / '.mlops' / 'mlflow.db'}"
    assert cell_text(out.cells[0]).splitlines() == [
        "jupyter-mlops: tracking every cell of 'nb.ipynb' in .mlops (%mlops help for commands)",
        NOTICE,
    ]
    assert cell_text(out.cells[1]) == f"kernel: {uri}\nchild: {uri}\n"


def test_mlops_yaml_keeps_the_tracking_uri_unset(project: Path) -> None:
    (project / "mlops.yaml").write_text("tracking:\n  export_tracking_uri: false\n")
    out = execute_notebook(write_notebook(project / "nb.ipynb", CELLS))
    assert cell_text(out.cells[0]).splitlines() == [
        "jupyter-mlops: tracking every cell of 'nb.ipynb' in .mlops (%mlops help for commands)",
    ]
    assert cell_text(out.cells[1]) == "kernel: None\nchild: None\n"


def test_a_bad_export_setting_names_the_field(project: Path) -> None:
    (project / "mlops.yaml").write_text("tracking:\n  export_tracking_uri: maybe\n")
    out = execute_notebook(write_notebook(project / "nb.ipynb", CELLS[:1]))
    assert cell_text(out.cells[0]) == (
        f"jupyter-mlops: {project / 'mlops.yaml'}: tracking.export_tracking_uri: "
        "must be true or false\njupyter-mlops: cell tracking is off until this is fixed\n"
    )
