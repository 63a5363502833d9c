"""``--search optuna``: the space checked before anything runs, trials as pipeline runs in a
study kept in the project, resumed after an interruption, pruned from inside a step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from jupyter_mlops import store
from jupyter_mlops.cli import main
from jupyter_mlops.exceptions import MlopsError
from jupyter_mlops.magics import run_line
from jupyter_mlops.pipelines.search import SearchError, run_search, search
from jupyter_mlops.pipelines.search_space import (
    SearchSpaceError,
    parse_dimension,
    parse_objective,
    parse_space_options,
)
from jupyter_mlops.pipelines.spec import PipelineSpecError, load_pipeline
from tests.conftest import settings_for
from tests.pipelines.helpers import pipeline_file, step_notebook

pytestmark = pytest.mark.slow

# -- the space, before anything runs -----------------------------------------------------------


def test_ranges_and_choices_parse_as_written() -> None:
    lr = parse_dimension("lr", "loguniform(1e-4, 1e-1)")
    assert (lr.kind, lr.low, lr.high, lr.log) == ("float", 1e-4, 1e-1, True)
    hidden = parse_dimension("hidden", "int(16, 256)")
    assert (hidden.kind, hidden.low, hidden.high, hidden.log) == ("int", 16, 256, False)
    assert parse_dimension("opt", ["adam", "sgd"]).choices == ("adam", "sgd")
    assert parse_dimension("opt", "[adam, sgd]").choices == ("adam", "sgd")
    assert parse_dimension("d", "uniform(0, 1)").describe() == "uniform(0.0, 1.0)"
    assert parse_objective("test_accuracy:max") == ("test_accuracy", "maximize")
    assert parse_objective("evaluate.loss:min") == ("evaluate.loss", "minimize")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("loguniform(1e-4)", "search lr: loguniform() takes (low, high), got 'loguniform(1e-4)'"),
        ("uniform(1, 0)", "search lr: low must be below high in 'uniform(1, 0)'"),
        ("loguniform(0, 1)", "search lr: a log range needs low > 0, got 'loguniform(0, 1)'"),
        ("int(1.5, 4)", "search lr: int() bounds must be whole numbers, not 1.5"),
        ("uniform(a, 2)", "search lr: 'a' is not a number"),
        ("uniform(0, inf)", "search lr: bounds must be finite, not inf"),
        ("normal(0, 1)", "search lr: 'normal(0, 1)' is not a range; use uniform(low, high)"),
        ([], "search lr: an empty list of choices"),
        (["a", "a"], "search lr: a choice is listed twice"),
        ([{"a": 1}], "search lr: choices must be plain values"),
        (3, "search lr: 3 is not a range"),
    ],
)
def test_a_bad_range_names_the_param_and_what_is_wrong(value: Any, message: str) -> None:
    with pytest.raises(SearchSpaceError) as err:
        parse_dimension("lr", value)
    assert message in str(err.value)


def test_bad_objectives_spaces_and_pipeline_files_are_refused(tmp_path: Path) -> None:
    for text in ("accuracy", "accuracy:best", ":max"):
        with pytest.raises(SearchSpaceError, match="expected METRIC:max or METRIC:min"):
            parse_objective(text)
    with pytest.raises(SearchSpaceError, match=r"--space 'lr': expected name=range"):
        parse_space_options(["lr"], {"lr": 0.1})
    with pytest.raises(SearchSpaceError, match=r"search depth: not a pipeline param \(known: lr\)"):
        parse_space_options(["depth=int(1, 3)"], {"lr": 0.1})
    step_notebook(tmp_path / "s.ipynb", "lr = 0.1", "pass")
    path = pipeline_file(
        tmp_path / "p.yaml",
        {"name": "p", "params": {"lr": 0.1}, "search": {"lr": "uniform(1)"},
         "steps": {"s": {"notebook": "s.ipynb", "params": {"lr": "${params.lr}"}}}},
    )  # fmt: skip
    with pytest.raises(PipelineSpecError) as err:
        load_pipeline(path)
    assert (
        str(err.value)
        == f"{path}: search: search lr: uniform() takes (low, high), got 'uniform(1)'"
    )


# -- real searches -------------------------------------------------------------------------

#: a step that does not depend on the searched params (cached after the first trial), then
#: one scored by them: best near x = 0.3 with opt "b"
DATA = 'import jupyter_mlops\njupyter_mlops.output("rows", 100)'
SCORE = (
    "import jupyter_mlops\n"
    "score = 1 - (float(x) - 0.3) ** 2 + (0.1 if opt == 'b' else 0.0)\n"
    'jupyter_mlops.output("score", score)'
)


def scored(root: Path, score: str = SCORE, **extra: Any) -> Path:
    step_notebook(root / "data.ipynb", None, DATA)
    step_notebook(root / "score.ipynb", "x = 0.5\nopt = 'a'\nrows = 0", score)
    return pipeline_file(
        root / "pipeline.yaml",
        {
            "name": "scored",
            "params": {"x": 0.5, "opt": "a"},
            "search": {"x": "uniform(0, 1)", "opt": ["a", "b"]},
            "steps": {
                "data": {"notebook": "data.ipynb", "outputs": ["rows"]},
                "score": {
                    "notebook": "score.ipynb",
                    "params": {"x": "${params.x}", "opt": "${params.opt}",
                               "rows": "${steps.data.rows}"},
                    "outputs": ["score"],
                },
            },
            **extra,
        },
    )  # fmt: skip


def _runs(root: Path, query: str) -> list[Any]:
    client = store.client(settings_for(root))
    experiments = [e.experiment_id for e in client.search_experiments()]
    return list(client.search_runs(experiments, filter_string=query, max_results=1000))


def test_a_search_runs_its_trials_as_pipeline_runs_and_keeps_the_study(project: Path) -> None:
    path = scored(project)
    found = run_search(path, trials=6, objective="score:max", parallel=2, seed=0, progress=False)
    assert found.ran == 6 and len(found.trials) == 6
    assert {t.state for t in found.trials} == {"COMPLETE"}
    assert found.best is not None
    assert found.best.value == max(t.value for t in found.trials if t.value is not None)
    assert set(found.best.params) == {"x", "opt"}
    # each trial is a pipeline run nested under the search run, named by its study and trial
    pipelines = _runs(project, "tags.`mlops.kind` = 'pipeline'")
    assert len(pipelines) == 6
    assert {r.data.tags["mlflow.parentRunId"] for r in pipelines} == {found.search_run_id}
    assert sorted(int(r.data.tags["mlops.trial"]) for r in pipelines) == list(range(6))
    best = [r for r in pipelines if r.data.tags.get("mlops.best_trial") == "true"]
    assert [r.info.run_id for r in best] == [found.best.run_id]
    # the step the params do not reach ran once or twice (two trials start at once), then
    # came from the cache
    data_runs = [r for r in _runs(project, "tags.`mlops.kind` = 'step'")
                 if r.data.tags.get("mlops.step") == "data"]  # fmt: skip
    executed = [r for r in data_runs if r.data.tags.get("mlops.cache_hit") == "false"]
    assert len(data_runs) == 6 and 1 <= len(executed) <= 2
    # the search run: its best, and Optuna's figures as one page with plotly inside
    client = store.client(settings_for(project))
    search_run = client.get_run(found.search_run_id)
    assert search_run.data.tags["mlops.kind"] == "search"
    assert search_run.data.tags["mlops.best_run_id"] == found.best.run_id
    assert search_run.data.metrics["best_score"] == pytest.approx(found.best.value)
    assert search_run.info.status == "FINISHED"
    page = Path(client.download_artifacts(found.search_run_id, "search_report.html")).read_text()
    assert "Optimization History" in page and "Hyperparameter Importances" in page
    assert "plotly.js" in page.lower() or "plotly" in page[:200_000]
    table = found.table()
    assert "trial" in table and "score" in table and f"best: trial {found.best.number}" in table
    assert (project / ".mlops" / "optuna.db").stat().st_mode & 0o777 == 0o600

    # the study is kept: a budget of 8 runs 2 more, and the stale running trial of a killed
    # search is marked failed and not counted
    import optuna

    study = optuna.load_study(
        study_name="scored", storage=f"sqlite:///{project / '.mlops' / 'optuna.db'}"
    )
    study.ask()  # as a search killed midway leaves it
    more = search(path, trials=8, objective="score:max", progress=False, seed=1)
    assert more.ran == 2
    states = [t.state for t in more.trials]
    assert states.count("COMPLETE") == 8 and states.count("FAIL") == 1
    assert [t.error for t in more.trials if t.state == "FAIL"] == ["interrupted"]
    assert more.best is not None and more.best.value is not None
    assert more.best.value >= found.best.value
    tagged = [r for r in _runs(project, "tags.`mlops.best_trial` = 'true'")]
    assert [r.info.run_id for r in tagged] == [more.best.run_id]  # one best at a time


PRUNED_SCORE = (
    "import jupyter_mlops\n"
    "for step in range(4):\n"
    "    jupyter_mlops.log_metrics({'score': float(x)}, step=step)\n"
    "jupyter_mlops.output('score', float(x))"
)


def test_a_trial_below_the_threshold_is_pruned_from_inside_its_step(project: Path) -> None:
    step_notebook(project / "data.ipynb", None, DATA)
    step_notebook(
        project / "score.ipynb",
        "x = 0.5\nopt = 'a'\nrows = 0",
        "%load_ext jupyter_mlops",
        PRUNED_SCORE,
    )
    path = pipeline_file(
        project / "pipeline.yaml",
        {"name": "pruned", "params": {"x": 0.5, "opt": "a"},
         "search": {"x": "uniform(0, 1)"},
         "steps": {"data": {"notebook": "data.ipynb", "outputs": ["rows"]},
                   "score": {"notebook": "score.ipynb", "outputs": ["score"],
                             "params": {"x": "${params.x}", "rows": "${steps.data.rows}"}}}},
    )  # fmt: skip
    found = run_search(
        path, trials=6, objective="score:max", pruner="threshold:lower=0.5", seed=3,
        progress=False,
    )  # fmt: skip
    by_state: dict[str, list[Any]] = {}
    for t in found.trials:
        by_state.setdefault(t.state, []).append(t)
    assert set(by_state) <= {"COMPLETE", "PRUNED"}
    assert all(t.params["x"] < 0.5 for t in by_state.get("PRUNED", []))
    assert all(t.params["x"] >= 0.5 for t in by_state.get("COMPLETE", []))
    assert by_state.get("PRUNED"), "seed 3 draws an x below 0.5 among 6 trials"
    client = store.client(settings_for(project))
    for t in by_state["PRUNED"]:
        run = client.get_run(t.run_id)
        assert run.info.status == "KILLED" and run.data.tags["mlops.trial_state"] == "PRUNED"
        assert t.error == "pruned in step score"


def test_an_objective_no_step_outputs_stops_the_search_with_what_there_is(
    project: Path,
) -> None:
    path = scored(project)
    with pytest.raises(SearchError) as err:
        run_search(path, trials=5, objective="accuracy:max", progress=False)
    assert str(err.value) == (
        "objective 'accuracy' is not a numeric output of any step of scored "
        "(outputs: data.rows, score.score)"
    )
    [search_run] = _runs(project, "tags.`mlops.kind` = 'search'")
    assert search_run.info.status == "FAILED"
    assert len(_runs(project, "tags.`mlops.kind` = 'pipeline'")) == 1  # stopped at once


def test_bad_search_requests_are_refused_before_any_trial(project: Path) -> None:
    path = scored(project)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"trials": 0}, "--trials must be a whole number from 1 to 10000, got 0"),
        ({"objective": "score"}, "expected METRIC:max or METRIC:min"),
        ({"pruner": "hyperband"}, "--pruner 'hyperband': choose median, none"),
        ({"params": {"x": "0.2"}}, "-p x is also searched: give it either a value or a range"),
    ]
    for change, message in cases:
        kwargs: dict[str, Any] = {"trials": 2, "objective": "score:max", "progress": False}
        kwargs.update(change)
        params = kwargs.pop("params", None)
        with pytest.raises(MlopsError) as err:
            run_search(path, params, **kwargs)
        assert message in str(err.value), (change, str(err.value))
    empty = pipeline_file(
        project / "empty.yaml",
        {"name": "empty", "params": {"x": 0.5},
         "steps": {"data": {"notebook": "data.ipynb", "outputs": ["rows"]}}},
    )  # fmt: skip
    with pytest.raises(SearchSpaceError, match=r"nothing to search in empty\.yaml"):
        run_search(empty, trials=2, objective="rows:max", progress=False)
    assert not _runs(project, "tags.`mlops.kind` = 'pipeline'")


def test_the_command_line_and_the_magic_run_a_search(project: Path) -> None:
    scored(project)
    result = CliRunner().invoke(
        main,
        ["run", "pipeline.yaml", "--search", "optuna", "--trials", "2",
         "--objective", "score:max", "--space", "x=uniform(0.2, 0.4)", "--quiet"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "best: trial" in result.output
    assert "register the best: jupyter mlops run pipeline.yaml -p x=" in result.output
    bad = CliRunner().invoke(main, ["run", "pipeline.yaml", "--search", "optuna", "--trials", "2"])
    assert bad.exit_code != 0
    assert "--search optuna needs --trials N and --objective METRIC:max" in bad.output
    stray = CliRunner().invoke(main, ["run", "pipeline.yaml", "--trials", "2"])
    assert stray.exit_code != 0 and "go with --search optuna" in stray.output
    text = run_line("search pipeline.yaml --trials 3 --objective score:max")
    assert "best: trial" in text  # the study of the command line, one trial more
    assert len(_runs(project, "tags.`mlops.kind` = 'pipeline'")) == 3
