"""``pipeline.yaml``: load, validate and resolve a pipeline of notebook steps.

```yaml
name: digits
params: {epochs: 5, lr: 0.01}
steps:
  ingest:
    notebook: ingest.ipynb
    outputs: [train_path, test_path]
  train:
    notebook: train.ipynb
    needs: [ingest]
    params:
      epochs: ${params.epochs}
      train_path: ${steps.ingest.train_path}
    inputs: [data/labels.csv]
    cache: true
```

Every error names the file, the step and the field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Any

from ..exceptions import MlopsError
from .search_space import Dimension, SearchSpaceError, parse_space

_STEP_KEYS = {"notebook", "params", "needs", "inputs", "outputs", "cache", "traffic"}
_TOP_KEYS = {"name", "params", "steps", "description", "search"}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
#: ``${params.NAME}`` or ``${steps.STEP.OUTPUT}``
REF = re.compile(r"\$\{\s*(params|steps)\.([A-Za-z0-9_-]+)(?:\.([A-Za-z0-9_]+))?\s*\}")


class PipelineSpecError(MlopsError):
    """``pipeline.yaml`` is not valid; the message names file, step and field."""

    def __init__(self, path: Path | str, message: str, step: str | None = None, key: str = ""):
        where = f"{path}"
        if step:
            where += f": step {step!r}"
        if key:
            where += f": {key}"
        super().__init__(f"{where}: {message}")
        self.path = str(path)
        self.step = step
        self.key = key


@dataclass(frozen=True)
class StepSpec:
    """One notebook step."""

    name: str
    notebook: Path
    params: dict[str, Any] = field(default_factory=dict)
    needs: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    cache: bool = True
    #: deployments whose captured traffic is part of the cache key (a monitor step is a
    #: hit while they captured nothing new)
    traffic: tuple[str, ...] = ()


@dataclass(frozen=True)
class PipelineSpec:
    """A validated pipeline: steps in a DAG, parameters with defaults."""

    name: str
    path: Path
    params: dict[str, Any]
    steps: dict[str, StepSpec]
    #: steps in an order where every step comes after what it needs
    order: tuple[str, ...]
    #: the params ``--search`` varies and their ranges (``search_space.py``)
    search: dict[str, Dimension] = field(default_factory=dict)

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def upstream(self, step: str) -> set[str]:
        """Every step ``step`` depends on, directly or not."""
        seen: set[str] = set()
        stack = list(self.steps[step].needs)
        while stack:
            name = stack.pop()
            if name not in seen:
                seen.add(name)
                stack.extend(self.steps[name].needs)
        return seen

    def downstream(self, step: str) -> set[str]:
        return {name for name in self.steps if step in self.upstream(name)}


def references(value: Any) -> list[tuple[str, str, str | None]]:
    """Every ``${...}`` reference inside a param value (strings, lists, dicts)."""
    if isinstance(value, str):
        return [(m.group(1), m.group(2), m.group(3)) for m in REF.finditer(value)]
    if isinstance(value, list):
        return [r for item in value for r in references(item)]
    if isinstance(value, dict):
        return [r for item in value.values() for r in references(item)]
    return []


def _str_list(path: Path, step: str, key: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PipelineSpecError(path, "must be a list of strings", step, key)
    return tuple(value)


def _step(path: Path, name: str, raw: Any) -> StepSpec:
    if not _NAME.match(name):
        raise PipelineSpecError(path, "step names are letters, digits, '_' and '-'", name)
    if not isinstance(raw, dict):
        raise PipelineSpecError(path, "must be a mapping with at least 'notebook'", name)
    unknown = sorted(set(raw) - _STEP_KEYS)
    if unknown:
        raise PipelineSpecError(
            path, f"unknown key (known: {', '.join(sorted(_STEP_KEYS))})", name, unknown[0]
        )
    notebook = raw.get("notebook")
    if not isinstance(notebook, str) or not notebook:
        raise PipelineSpecError(path, "required, the path of a .ipynb file", name, "notebook")
    nb_path = (path.parent / notebook).resolve()
    if nb_path.suffix != ".ipynb":
        raise PipelineSpecError(path, f"{notebook!r} is not a .ipynb file", name, "notebook")
    if not nb_path.is_file():
        raise PipelineSpecError(path, f"{notebook!r} does not exist", name, "notebook")
    params = raw.get("params") or {}
    if not isinstance(params, dict):
        raise PipelineSpecError(path, "must be a mapping of name: value", name, "params")
    cache = raw.get("cache", True)
    if not isinstance(cache, bool):
        raise PipelineSpecError(path, "must be true or false", name, "cache")
    return StepSpec(
        name=name,
        notebook=nb_path,
        params={str(k): v for k, v in params.items()},
        needs=_str_list(path, name, "needs", raw.get("needs")),
        inputs=_str_list(path, name, "inputs", raw.get("inputs")),
        outputs=_str_list(path, name, "outputs", raw.get("outputs")),
        cache=cache,
        traffic=_str_list(path, name, "traffic", raw.get("traffic")),
    )


def _check_references(path: Path, steps: dict[str, StepSpec], params: dict[str, Any]) -> None:
    for step in steps.values():
        for key, value in step.params.items():
            for kind, target, output in references(value):
                field_name = f"params.{key}"
                if kind == "params":
                    if output is not None or target not in params:
                        raise PipelineSpecError(
                            path,
                            f"refers to pipeline param {target!r}, which 'params' does not define",
                            step.name,
                            field_name,
                        )
                    continue
                if target not in steps:
                    raise PipelineSpecError(
                        path, f"refers to unknown step {target!r}", step.name, field_name
                    )
                if output is None:
                    raise PipelineSpecError(
                        path, "a step reference is ${steps.STEP.OUTPUT}", step.name, field_name
                    )
                if output not in steps[target].outputs:
                    raise PipelineSpecError(
                        path,
                        f"refers to output {output!r} of step {target!r}, which declares "
                        f"{list(steps[target].outputs) or 'no outputs'}",
                        step.name,
                        field_name,
                    )


def _with_implicit_needs(steps: dict[str, StepSpec]) -> dict[str, StepSpec]:
    """A step that reads another step's output needs that step."""
    out = {}
    for name, step in steps.items():
        referenced = [t for v in step.params.values() for k, t, _ in references(v) if k == "steps"]
        needs = tuple(dict.fromkeys([*step.needs, *referenced]))
        out[name] = StepSpec(**{**step.__dict__, "needs": needs})
    return out


def parse_pipeline(path: Path, raw: Any) -> PipelineSpec:
    """Validate an already-parsed YAML document."""
    if not isinstance(raw, dict):
        raise PipelineSpecError(path, "expected a mapping with 'name' and 'steps'")
    unknown = sorted(set(raw) - _TOP_KEYS)
    if unknown:
        raise PipelineSpecError(
            path, f"unknown key (known: {', '.join(sorted(_TOP_KEYS))})", None, unknown[0]
        )
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise PipelineSpecError(path, "required, a non-empty string", None, "name")
    params = raw.get("params") or {}
    if not isinstance(params, dict):
        raise PipelineSpecError(path, "must be a mapping of name: default", None, "params")
    raw_steps = raw.get("steps")
    if not isinstance(raw_steps, dict) or not raw_steps:
        raise PipelineSpecError(path, "required, a mapping of step name to step", None, "steps")
    steps = {str(n): _step(path, str(n), s) for n, s in raw_steps.items()}
    for step in steps.values():
        for need in step.needs:
            if need not in steps:
                raise PipelineSpecError(path, f"unknown step {need!r}", step.name, "needs")
            if need == step.name:
                raise PipelineSpecError(path, "a step cannot need itself", step.name, "needs")
    _check_references(path, steps, params)
    steps = _with_implicit_needs(steps)
    sorter = TopologicalSorter({n: s.needs for n, s in steps.items()})
    try:
        order = tuple(sorter.static_order())
    except CycleError as err:
        cycle = " -> ".join(err.args[1])
        raise PipelineSpecError(path, f"the steps form a cycle: {cycle}", None, "needs") from None
    try:
        search = parse_space(raw.get("search"), {str(k): v for k, v in params.items()})
    except SearchSpaceError as err:
        raise PipelineSpecError(path, str(err), None, "search") from None
    return PipelineSpec(
        name=name.strip(),
        path=path,
        params={str(k): v for k, v in params.items()},
        steps=steps,
        order=order,
        search=search,
    )


def load_pipeline(path: str | Path) -> PipelineSpec:
    """Read and validate ``pipeline.yaml``.

    >>> spec = load_pipeline("templates/pipeline.yaml")  # doctest: +SKIP
    >>> spec.order  # doctest: +SKIP
    ('ingest', 'validate', 'train', 'evaluate')
    """
    import yaml

    p = Path(path).resolve()
    if not p.is_file():
        raise PipelineSpecError(p, "no such pipeline file")
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise PipelineSpecError(p, f"not valid YAML: {err}") from None
    return parse_pipeline(p, raw)
