"""``jupyter mlops evaluate`` and ``%mlops evaluate``: a registered model evaluated on a file
of the project (or a DataFrame of the notebook), and every bad input's message."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from jupyter_mlops import store
from jupyter_mlops.cli import main
from jupyter_mlops.config import load_settings
from jupyter_mlops.exceptions import MlopsError, NotFoundError
from jupyter_mlops.magics import run_line
from jupyter_mlops.registry.service import register
from tests.analysis import conftest as analysis
from tests.analysis.conftest import Cancer

pytestmark = pytest.mark.slow

#: the analysis tests' project: the cancer model packaged into a real SQLite store
cancer = analysis.cancer
COLUMNS = "mean_radius, mean_texture, mean_smoothness, mean_concavity, noise, size, target"


@pytest.fixture(scope="module")
def registered(cancer: Cancer) -> Iterator[Cancer]:
    """``cancer`` v1 holds the alias ``champion``; the table is ``data.csv`` and
    ``data.parquet`` in the project."""
    settings = load_settings(cancer.root)
    register(cancer.packaged, "cancer", settings=settings)
    store.client(settings).set_registered_model_alias("cancer", "champion", "1")
    cancer.table.to_csv(cancer.root / "data.csv", index=False)
    cancer.table.to_parquet(cancer.root / "data.parquet", index=False)
    (cancer.root / "data.json").write_text("{}")
    yield cancer


def _page(text: str, root: Path) -> Path:
    [line] = [line for line in text.splitlines() if line.startswith("  report: ")]
    return root / line.removeprefix("  report: ")


def test_the_cli_evaluates_a_file_into_a_named_experiment(registered: Cancer) -> None:
    result = CliRunner().invoke(
        main,
        ["evaluate", "cancer/1", "--data", "data.csv", "--target", "target",
         "--slices", "size", "--experiment", "evaluations"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("evaluation of models:/cancer/1 on 569 rows: run ")
    run_id = lines[0].rsplit(" ", 1)[1]
    assert lines[1].startswith("  accuracy_score 0.9") and "f1_score" in lines[1]
    assert lines[2].startswith("  worst slice on accuracy: size=")
    assert "  fairness: demographic_parity_difference " in result.output
    page = _page(result.output, registered.root)
    assert page.name == "evaluation.html" and page.is_file()
    assert run_id in str(page)
    client = store.client(load_settings(registered.root))
    run = client.get_run(run_id)
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.name == "evaluations"
    assert run.data.tags["mlops.kind"] == "evaluation"
    assert run.data.tags["mlops.model_version"] == "1"


def test_the_magic_evaluates_a_dataframe_of_the_notebook(registered: Cancer) -> None:
    text = run_line(
        "evaluate cancer@champion --data table --target target --slices ''",
        {"table": registered.table.drop(columns="size")},
    )
    first, metrics, *rest = text.splitlines()
    assert first.startswith("evaluation of models:/cancer@champion on 569 rows: run ")
    assert metrics.startswith("  accuracy_score 0.9")
    assert not any("worst slice" in line or "fairness" in line for line in rest)
    assert _page(text, registered.root).is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["cancer/1", "--data", "missing.csv"], "missing.csv: no such file"),
        (["cancer/1", "--data", "../outside.csv"], "../outside.csv: outside the project directory "),
        (["cancer/1", "--data", "data.json"],
         "data.json: evaluation data is read from a .csv or .parquet file"),
        (["cancer/1", "--data", "data.csv", "--target", "label"],
         f"target column 'label' is not in the data (columns: {COLUMNS})"),
        (["cancer/1", "--data", "data.parquet", "--slices", "region"],
         f"slice column 'region' (from slices=...) is not in the data (columns: {COLUMNS})"),
        (["nope@champion", "--data", "data.csv"], "no registered model 'nope' (models: cancer)"),
        (["cancer@staging", "--data", "data.csv"],
         "models:/cancer@staging: model 'cancer' has no alias 'staging'"),
        (["cancer/7", "--data", "data.csv"], "model 'cancer' has no version 7 (versions: 1)"),
        (["cancer", "--data", "data.csv"],
         "evaluate cancer: write MODEL@ALIAS, MODEL/VERSION, models:/... or runs:/..."),
    ],
)  # fmt: skip
def test_a_bad_input_is_named_by_both_doors(
    registered: Cancer, args: list[str], message: str
) -> None:
    if "--target" not in args:
        args = [*args, "--target", "target"]
    result = CliRunner().invoke(main, ["evaluate", *args])
    assert result.exit_code == 1, result.output
    [line] = result.output.splitlines()
    if message.endswith("outside the project directory "):
        message += str(registered.root)
    assert line == f"error: {message}"
    with pytest.raises(MlopsError) as err:
        run_line(" ".join(["evaluate", *args]), {})
    assert str(err.value) == message
    if "no such file" in message or "has no" in message or "no registered" in message:
        assert isinstance(err.value, NotFoundError)


def test_the_magic_names_a_missing_or_wrong_variable(registered: Cancer) -> None:
    with pytest.raises(MlopsError) as err:
        run_line("evaluate cancer/1 --data test_df --target target", {"df": registered.table})
    assert str(err.value).startswith(
        "%mlops evaluate: no variable 'test_df' in this notebook (--data takes a DataFrame's "
        "name or a .csv or .parquet file)\nusage: %mlops {"
    )
    with pytest.raises(MlopsError) as err:
        run_line("evaluate cancer/1 --data rows --target target", {"rows": [[1, 2]]})
    assert str(err.value).startswith(
        "%mlops evaluate: 'rows' is a list, not a DataFrame\nusage: %mlops {"
    )


def test_the_magic_names_a_missing_argument() -> None:
    with pytest.raises(MlopsError) as err:
        run_line("evaluate cancer/1 --data data.csv")
    assert str(err.value).startswith(
        "%mlops: the following arguments are required: --target\nusage: %mlops {"
    )
