"""pipeline.yaml validation: every error names the file, the step and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from jupyter_mlops.pipelines.params import resolve_pipeline_params
from jupyter_mlops.pipelines.spec import PipelineSpecError, load_pipeline, parse_pipeline
from tests.pipelines.helpers import diamond, step_notebook


@pytest.fixture
def nbdir(tmp_path: Path) -> Path:
    for name in ("a", "b"):
        step_notebook(tmp_path / f"{name}.ipynb", "v = 1", "w = v")
    return tmp_path


def _err(nbdir: Path, raw: Any) -> str:
    with pytest.raises(PipelineSpecError) as err:
        parse_pipeline(nbdir / "pipeline.yaml", raw)
    return str(err.value)


def test_diamond_is_valid_and_ordered(tmp_path: Path) -> None:
    spec = load_pipeline(diamond(tmp_path))
    assert spec.order.index("a") < spec.order.index("b") < spec.order.index("d")
    assert spec.steps["b"].needs == ("a",)  # implied by the reference to a's output
    assert spec.upstream("d") == {"a", "b", "c"}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([1], "expected a mapping with 'name' and 'steps'"),
        (
            {"name": "p", "steps": {"a": {"notebook": "a.ipynb"}}, "stages": 1},
            ": stages: unknown key",
        ),
        ({"steps": {"a": {"notebook": "a.ipynb"}}}, ": name: required"),
        ({"name": "p"}, ": steps: required"),
        (
            {"name": "p", "steps": {"a": {"notebook": "a.ipynb", "colour": 1}}},
            "step 'a': colour: unknown key",
        ),
        ({"name": "p", "steps": {"a": {}}}, "step 'a': notebook: required"),
        (
            {"name": "p", "steps": {"a": {"notebook": "zz.ipynb"}}},
            "step 'a': notebook: 'zz.ipynb' does not exist",
        ),
        (
            {"name": "p", "steps": {"a": {"notebook": "a.py"}}},
            "step 'a': notebook: 'a.py' is not a .ipynb file",
        ),
        (
            {"name": "p", "steps": {"a": {"notebook": "a.ipynb", "needs": ["q"]}}},
            "step 'a': needs: unknown step 'q'",
        ),
        (
            {"name": "p", "steps": {"a": {"notebook": "a.ipynb", "needs": "b"}}},
            "step 'a': needs: must be a list of strings",
        ),
        (
            {"name": "p", "steps": {"a": {"notebook": "a.ipynb", "cache": "yes"}}},
            "step 'a': cache: must be true or false",
        ),
        (
            {"name": "p", "steps": {"a": {"notebook": "a.ipynb", "params": [1]}}},
            "step 'a': params: must be a mapping",
        ),
        (
            {"name": "p", "params": [1], "steps": {"a": {"notebook": "a.ipynb"}}},
            ": params: must be a mapping",
        ),
        (
            {
                "name": "p",
                "steps": {
                    "a": {"notebook": "a.ipynb", "needs": ["b"]},
                    "b": {"notebook": "b.ipynb", "needs": ["a"]},
                },
            },
            "needs: the steps form a cycle: ",
        ),
        (
            {
                "name": "p",
                "steps": {
                    "a": {"notebook": "a.ipynb"},
                    "b": {"notebook": "b.ipynb", "params": {"v": "${steps.a.out}"}},
                },
            },
            "step 'b': params.v: refers to output 'out' of step 'a', which declares no outputs",
        ),
        (
            {
                "name": "p",
                "steps": {"b": {"notebook": "b.ipynb", "params": {"v": "${steps.zz.out}"}}},
            },
            "step 'b': params.v: refers to unknown step 'zz'",
        ),
        (
            {
                "name": "p",
                "steps": {"b": {"notebook": "b.ipynb", "params": {"v": "${params.epochs}"}}},
            },
            "step 'b': params.v: refers to pipeline param 'epochs', which 'params' does not define",
        ),
    ],
)
def test_bad_specs(nbdir: Path, raw: Any, message: str) -> None:
    text = _err(nbdir, raw)
    assert message in text
    assert str(nbdir / "pipeline.yaml") in text


def test_missing_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(PipelineSpecError, match="no such pipeline file"):
        load_pipeline(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("name: [unclosed")
    with pytest.raises(PipelineSpecError, match="not valid YAML"):
        load_pipeline(tmp_path / "bad.yaml")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"x": "abc"}, "-p x: expects an integer (default 1), got 'abc'"),
        ({"fail": "maybe"}, "-p fail: expects true or false (default False), got 'maybe'"),
        ({"nap": "slow"}, "-p nap: expects a number (default 0.0), got 'slow'"),
        ({"epochs": "3"}, "-p epochs: unknown pipeline param (known: fail, nap, x)"),
    ],
)
def test_bad_overrides(tmp_path: Path, overrides: dict[str, str], message: str) -> None:
    spec = load_pipeline(diamond(tmp_path))
    with pytest.raises(PipelineSpecError) as err:
        resolve_pipeline_params(spec, overrides)
    assert message in str(err.value)


def test_overrides_are_typed(tmp_path: Path) -> None:
    spec = load_pipeline(diamond(tmp_path))
    assert resolve_pipeline_params(spec, {"x": "4", "fail": "TRUE", "nap": "2"}) == {
        "x": 4,
        "fail": True,
        "nap": 2.0,
    }
