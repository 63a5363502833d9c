"""``%mlops template``: from a tracked notebook to a parameterised pipeline step."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jupyter_mlops.pipelines.runner import run_pipeline
from tests.conftest import cell_text, execute_notebook, write_notebook
from tests.pipelines.helpers import pipeline_file

pytestmark = pytest.mark.slow


def test_template_from_a_tracked_session_runs_as_a_step(project: Path) -> None:
    path = write_notebook(
        project / "explore.ipynb",
        [
            "%load_ext jupyter_mlops",
            'lr = 0.1\nepochs = 3\noptimizer = "sgd"\nsteps = epochs * 2',
            "import jupyter_mlops\nloss = lr * epochs\njupyter_mlops.output('loss', loss)",
            "%mlops template explore",
            "%mlops template explore",
            "%mlops template bad/name",
        ],
    )
    nb = execute_notebook(path)
    assert "wrote templates/explore.ipynb with parameters lr, epochs, optimizer" in cell_text(
        nb.cells[3]
    )
    assert "templates/explore.ipynb exists; pass --force to replace it" in cell_text(nb.cells[4])
    assert "template name 'bad/name'" in cell_text(nb.cells[5])

    template = json.loads((project / "templates" / "explore.ipynb").read_text())
    sources = ["".join(c["source"]) for c in template["cells"]]
    assert sources[0] == "%load_ext jupyter_mlops"
    assert template["cells"][1]["metadata"]["tags"] == ["parameters"]
    assert sources[1] == "lr = 0.1\nepochs = 3\noptimizer = 'sgd'"
    assert sources[2] == "steps = epochs * 2"  # computed, so it stays where it was
    assert not any("%mlops template" in s for s in sources)
    assert all(c.get("outputs", []) == [] for c in template["cells"] if c["cell_type"] == "code")

    spec = pipeline_file(
        project / "p.yaml",
        {
            "name": "explored",
            "steps": {
                "explore": {
                    "notebook": "templates/explore.ipynb",
                    "params": {"lr": 0.5, "epochs": 4},
                    "outputs": ["loss"],
                }
            },
        },
    )
    result = run_pipeline(spec, progress=False)
    assert result.steps["explore"].outputs == {"loss": 2.0}


def test_template_needs_a_known_notebook(project: Path) -> None:
    from jupyter_mlops.exceptions import MlopsError
    from jupyter_mlops.magics import run_line

    with pytest.raises(MlopsError, match="run %load_ext jupyter_mlops first"):
        run_line("template x")
