"""A notebook renamed or moved in JupyterLab keeps its runs, and later cells follow it."""

from __future__ import annotations

from pathlib import Path

from jupyter_mlops import store
from jupyter_mlops.tracking.moves import move_notebook
from tests.conftest import cell_text, drain, execute_notebook, settings_for, write_notebook

SETUP = (
    "import jupyter_mlops\n"
    "from jupyter_mlops.config import load_settings\n"
    "from jupyter_mlops.tracking import api, queries\n"
    "from jupyter_mlops.tracking.moves import move_notebook\n"
    "settings = load_settings()"
)


def test_cells_follow_a_renamed_notebook_and_its_runs_stay_together(project: Path) -> None:
    (project / "sub").mkdir()
    cells = [
        "%load_ext jupyter_mlops",
        "print('tracking', __import__('jupyter_mlops.tracking.queries', fromlist=['q'])"
        ".is_tracking(__import__('jupyter_mlops.config', fromlist=['c']).load_settings(),"
        " 'a.ipynb'))",
        SETUP,
        "x = 1",
        # what the sidebar does after File > Rename: the server renames the experiment,
        # then the kernel is told the new path (silently: not a tracked cell)
        "jupyter_mlops.flush()\n"
        "print(move_notebook(settings, 'a.ipynb', 'sub/b.ipynb'))\n"
        f"api.notebook_moved({str(project / 'sub' / 'b.ipynb')!r})",
        "y = 2",
        # a move the server did not see: the writer renames the experiment itself
        f"api.notebook_moved({str(project / 'c.ipynb')!r})",
        "z = 3",
        "print('old', queries.is_tracking(settings, 'a.ipynb'),"
        " 'new', queries.is_tracking(settings, 'c.ipynb'))",
    ]
    nb = execute_notebook(write_notebook(project / "a.ipynb", cells))
    assert "tracking True" in cell_text(nb.cells[1])
    assert "moved=[{'from': 'a.ipynb', 'to': 'sub/b.ipynb'}]" in cell_text(nb.cells[4])
    assert "old False new True" in cell_text(nb.cells[8])
    drain(project)

    client = store.client(settings_for(project))
    assert client.get_experiment_by_name("a.ipynb") is None
    assert client.get_experiment_by_name("sub/b.ipynb") is None
    experiment = client.get_experiment_by_name("c.ipynb")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    kinds = sorted(r.data.tags["mlops.kind"] for r in runs)
    assert kinds.count("session") == 1 and kinds.count("cell") == 8, kinds
    by_source = {
        r.data.tags.get("mlops.source"): r.data.tags["mlflow.source.name"]
        for r in runs
        if r.data.tags["mlops.kind"] == "cell"
    }
    assert by_source["x = 1"] == "a.ipynb"
    assert by_source["y = 2"] == "sub/b.ipynb"
    assert by_source["z = 3"] == "c.ipynb"
    [session] = [r for r in runs if r.data.tags["mlops.kind"] == "session"]
    assert session.data.tags["mlflow.source.name"] == "c.ipynb"


def test_moving_a_folder_moves_its_notebooks_and_never_merges_histories(project: Path) -> None:
    settings = settings_for(project)
    for name in ("f/one.ipynb", "f/deep/two.ipynb", "f.ipynb", "taken.ipynb", "g/one.ipynb"):
        store.get_or_create_experiment(settings, name)
    result = move_notebook(settings, "f", "g")
    assert sorted(m["to"] for m in result.moved) == ["g/deep/two.ipynb"]
    assert [s["from"] for s in result.skipped] == ["f/one.ipynb"]  # g/one.ipynb exists
    assert "already exists" in result.skipped[0]["reason"]
    assert move_notebook(settings, "f.ipynb", "taken.ipynb").moved == []
    assert move_notebook(settings, "nothing.ipynb", "else.ipynb").to_dict() == {
        "moved": [],
        "skipped": [],
    }
    client = store.client(settings)
    assert client.get_experiment_by_name("f.ipynb") is not None
