"""Pipeline parameters: command-line overrides typed by their defaults, references resolved,
and step parameters checked against the notebook's own ``parameters`` cell."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

from .spec import REF, PipelineSpec, PipelineSpecError, StepSpec


def _coerce(name: str, raw: str, default: Any, where: str) -> Any:
    """Type ``raw`` like the default it overrides."""

    def bad(expected: str) -> PipelineSpecError:
        return PipelineSpecError(
            where, f"expects {expected} (default {default!r}), got {raw!r}", None, f"-p {name}"
        )

    if isinstance(default, bool):
        if raw.lower() not in ("true", "false"):
            raise bad("true or false")
        return raw.lower() == "true"
    if isinstance(default, int):
        try:
            return int(raw)
        except ValueError:
            raise bad("an integer") from None
    if isinstance(default, float):
        try:
            return float(raw)
        except ValueError:
            raise bad("a number") from None
    if isinstance(default, (list, dict)):
        try:
            value = json.loads(raw)
        except ValueError:
            raise bad(f"a JSON {type(default).__name__}") from None
        if not isinstance(value, type(default)):
            raise bad(f"a JSON {type(default).__name__}")
        return value
    if default is None:
        from ..tracking.api import parse_value

        return parse_value(raw)
    return raw


def resolve_pipeline_params(spec: PipelineSpec, overrides: dict[str, str]) -> dict[str, Any]:
    """Defaults from the spec with ``-p k=v`` overrides applied and typed."""
    out = dict(spec.params)
    for name, raw in overrides.items():
        if name not in spec.params:
            known = ", ".join(sorted(spec.params)) or "none"
            raise PipelineSpecError(
                spec.path, f"unknown pipeline param (known: {known})", None, f"-p {name}"
            )
        out[name] = _coerce(name, raw, spec.params[name], str(spec.path))
    return out


def _substitute(value: Any, params: dict[str, Any], outputs: dict[str, dict[str, Any]]) -> Any:
    if isinstance(value, list):
        return [_substitute(v, params, outputs) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, params, outputs) for k, v in value.items()}
    if not isinstance(value, str):
        return value

    def lookup(kind: str, target: str, output: str | None) -> Any:
        if kind == "params":
            return params[target]
        return outputs[target][output or ""]

    whole = REF.fullmatch(value.strip())
    if whole:  # a bare reference keeps the value's own type
        return lookup(whole.group(1), whole.group(2), whole.group(3))
    return REF.sub(lambda m: str(lookup(m.group(1), m.group(2), m.group(3))), value)


def resolve_step_params(
    step: StepSpec, params: dict[str, Any], outputs: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """The step's parameters with every reference replaced by its value."""
    return {k: _substitute(v, params, outputs) for k, v in step.params.items()}


_TYPE_NAMES = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,)}


def template_parameters(notebook: Path) -> dict[str, dict[str, Any]] | None:
    """The assignments of the notebook's ``parameters`` cell; None when it has no such cell.

    Read with ``ast`` rather than papermill so a cached step costs no papermill import.
    """
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    for cell in nb.get("cells", []):
        if "parameters" not in (cell.get("metadata") or {}).get("tags", []):
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else source
        try:
            tree = ast.parse(source)
        except SyntaxError as err:
            # papermill would inject values after a cell that cannot run: say so now
            raise PipelineSpecError(
                notebook,
                f"its parameters cell does not parse: line {err.lineno}: {err.msg}",
                key="parameters cell",
            ) from None
        found: dict[str, dict[str, Any]] = {}
        for stmt in tree.body:
            target, value = None, None
            if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
                target, value = stmt.targets[0], stmt.value
            elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
                target, value = stmt.target, stmt.value
            if not isinstance(target, ast.Name) or value is None:
                continue
            try:
                default = ast.literal_eval(value)
                type_name = type(default).__name__ if default is not None else "None"
            except ValueError:
                default, type_name = ast.unparse(value), "None"
            found[target.id] = {
                "name": target.id,
                "inferred_type_name": type_name,
                "default": default,
            }
        return found
    return None


def check_step_params(
    spec: PipelineSpec, step: StepSpec, values: dict[str, Any], declared: dict[str, Any] | None
) -> None:
    """Every param the step passes exists in the template and has a compatible type."""
    if declared is None:
        return
    for name, value in values.items():
        if name not in declared:
            known = ", ".join(sorted(declared)) or "none"
            raise PipelineSpecError(
                spec.path,
                f"{step.notebook.name}'s parameters cell has no {name!r} (it has: {known})",
                step.name,
                f"params.{name}",
            )
        type_name = declared[name].get("inferred_type_name", "None")
        allowed = _TYPE_NAMES.get(type_name)
        if allowed is None or value is None:
            continue
        if isinstance(value, bool) and type_name != "bool":
            ok = False
        else:
            ok = isinstance(value, allowed)
        if not ok:
            raise PipelineSpecError(
                spec.path,
                f"{step.notebook.name} expects {type_name} "
                f"(default {declared[name].get('default')}), got {type(value).__name__} {value!r}",
                step.name,
                f"params.{name}",
            )
