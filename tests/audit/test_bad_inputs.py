"""Each bad input of an audit names what to fix, at the service and at both doors."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from jupyter_mlops.audit import audit
from jupyter_mlops.cli import main
from jupyter_mlops.config import Settings
from jupyter_mlops.exceptions import MlopsError, NotFoundError
from jupyter_mlops.magics import run_line


@pytest.mark.parametrize(
    ("spec", "request_id", "message"),
    [
        ("nope@champion", None, "no registered model 'nope' (models: iris)"),
        ("iris/9", None, "model 'iris' has no version 9 (versions: 1, 2)"),
        ("iris@staging", None, "model 'iris' has no alias 'staging' (aliases: champion (v2))"),
        (None, "no-such-request", "no captured request with id 'no-such-request'"),
        ("iris", None, "audit iris: write MODEL@ALIAS or MODEL/VERSION"),
        (None, None, "audit needs MODEL@ALIAS, MODEL/VERSION or --request ID"),
    ],
)
def test_unknown_things_are_named(
    audited: Settings, spec: str | None, request_id: str | None, message: str
) -> None:
    with pytest.raises(MlopsError) as err:
        audit(spec, request=request_id, settings=audited)
    assert message in str(err.value)
    if "no " in message[:3] or "has no" in message:
        assert isinstance(err.value, NotFoundError)


def test_an_out_path_outside_the_project_is_refused(audited: Settings) -> None:
    outside = audited.project_dir.parent / "elsewhere"
    with pytest.raises(MlopsError) as err:
        audit("iris/1", out=str(outside), settings=audited)
    assert str(err.value) == f"{outside}: outside the project directory {audited.project_dir}"
    with pytest.raises(MlopsError, match="outside the project directory"):
        audit("iris/1", out="../elsewhere", settings=audited)
    assert not outside.exists()


def test_the_cli_and_the_magic_print_the_message(audited: Settings) -> None:
    result = CliRunner().invoke(main, ["audit", "iris/9"])
    assert result.exit_code == 1
    assert "error: model 'iris' has no version 9 (versions: 1, 2)" in result.output
    result = CliRunner().invoke(main, ["audit", "iris/1", "--out", "../x"])
    assert result.exit_code == 1 and "outside the project directory" in result.output
    with pytest.raises(NotFoundError, match="no captured request with id 'abc'"):
        run_line("audit --request abc")


def test_the_cli_and_the_magic_write_the_report(audited: Settings) -> None:
    result = CliRunner().invoke(main, ["audit", "iris@champion", "--out", "reports/cli"])
    assert result.exit_code == 0, result.output
    assert "audit of iris v2 written to " in result.output
    assert len(list((audited.project_dir / "reports" / "cli").glob("iris-v2-*.html"))) == 1
    text = run_line("audit iris/1 --out reports/magic")
    assert text.startswith("audit of iris v1 written to ")
    assert len(list((audited.project_dir / "reports" / "magic").glob("iris-v1-*.md"))) == 1
