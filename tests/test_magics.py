"""``%mlops`` lines: each one calls a plain function; mistakes give a usage line."""

from __future__ import annotations

from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell

from jupyter_mlops.exceptions import MlopsError, UsageError
from jupyter_mlops.magics import run_line
from jupyter_mlops.tracking import api


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("bogus", "invalid choice: 'bogus'"),
        ("log", "the following arguments are required: k=v"),
        ("log k", "expected k=v, got 'k'"),
        ("tag =v", "expected k=v, got '=v'"),
        ("runs -n x", "invalid int value: 'x'"),
        ("runs -n 0", "-n must be at least 1"),
        ('log "unclosed', "No closing quotation"),
        ("status extra", "unrecognized arguments: extra"),
        ("capture prod", "the following arguments are required: state"),
        ("capture prod pause", "argument state: invalid choice: 'pause' (choose from 'on', 'off')"),
    ],
)
def test_bad_lines_raise_usage_errors(line: str, message: str) -> None:
    with pytest.raises(UsageError) as err:
        run_line(line)
    assert message in str(err.value)
    assert "usage: %mlops" in str(err.value)


def test_help_lists_every_command() -> None:
    text = run_line("help")
    for word in ("status", "on", "off", "log k=v", "tag k=v", "runs [-n N]", "flush", "skip"):
        assert word in text
    assert run_line("") == text


@pytest.mark.parametrize("line", ["status", "on", "flush", "log a=1", "tag a=1"])
def test_commands_that_need_a_session_say_so(line: str) -> None:
    assert api.active_session() is None
    with pytest.raises(MlopsError, match="run %load_ext jupyter_mlops first"):
        run_line(line)


def test_magic_prints_errors_without_traceback(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shell = InteractiveShell.instance()
    from jupyter_mlops.magics import MlopsMagics

    shell.register_magics(MlopsMagics)
    shell.run_line_magic("mlops", "bogus")
    shell.run_cell_magic("mlops", "other", "x = 1")
    out = capsys.readouterr().out
    assert "invalid choice: 'bogus'" in out
    assert "unknown cell command 'other'" in out
    assert "Traceback" not in out


def test_explicit_logging_without_tracking_warns_and_keeps_going() -> None:
    import jupyter_mlops

    with pytest.warns(UserWarning, match="tracking is not running"):
        jupyter_mlops.log_metrics(loss=1.0)
    with pytest.warns(UserWarning, match="tracking is not running"):
        jupyter_mlops.log_params(lr=0.1)


def test_a_bad_mlops_yaml_leaves_the_kernel_working(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "mlops.yaml").write_text("tracking:\n  colour: red\n")
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "jupyter_mlops")
    try:
        out = capsys.readouterr().out
        assert "tracking: unknown key 'colour'" in out
        assert "cell tracking is off until this is fixed" in out
        assert api.active_session() is None
        result = shell.run_cell("after = 1")
        assert result.success
    finally:
        shell.run_line_magic("unload_ext", "jupyter_mlops")
