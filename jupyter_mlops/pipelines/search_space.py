"""A search space as written in ``pipeline.yaml`` or on the command line, checked early.

``search: {lr: loguniform(1e-4, 1e-1), hidden: int(16, 256), optimizer: [adam, sgd]}``: each
pipeline param gets one of ``uniform(low, high)``, ``loguniform(low, high)``,
``int(low, high)``, ``logint(low, high)`` or a list of choices. Nothing here imports Optuna,
so a pipeline file with a bad space is refused before anything runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..exceptions import MlopsError

_CALL = re.compile(r"^\s*(uniform|loguniform|int|logint)\s*\(([^()]*)\)\s*$")
_KINDS = "uniform(low, high), loguniform(low, high), int(low, high), logint(low, high)"


class SearchSpaceError(MlopsError):
    """A search space that cannot be searched; the message names the param."""


@dataclass(frozen=True)
class Dimension:
    """One param's range: ``kind`` is float, int or choice."""

    name: str
    kind: str
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    choices: tuple[Any, ...] = ()

    def describe(self) -> str:
        if self.kind == "choice":
            return "[" + ", ".join(str(c) for c in self.choices) + "]"
        call = ("log" if self.log else "") + ("int" if self.kind == "int" else "uniform")
        low, high = (int(self.low), int(self.high)) if self.kind == "int" else (self.low, self.high)
        return f"{call}({low}, {high})"

    def to_optuna(self) -> Any:
        from optuna.distributions import (
            CategoricalDistribution,
            FloatDistribution,
            IntDistribution,
        )

        if self.kind == "choice":
            return CategoricalDistribution(list(self.choices))
        if self.kind == "int":
            return IntDistribution(int(self.low), int(self.high), log=self.log)
        return FloatDistribution(self.low, self.high, log=self.log)


def _number(name: str, text: str, whole: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        raise SearchSpaceError(f"search {name}: {text.strip()!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise SearchSpaceError(f"search {name}: bounds must be finite, not {text.strip()}")
    if whole and not value.is_integer():
        raise SearchSpaceError(f"search {name}: int() bounds must be whole numbers, not {text}")
    return value


def parse_dimension(name: str, value: Any) -> Dimension:
    """One param's range from its YAML value (a call as text, or a list of choices)."""
    if isinstance(value, list):
        if not value:
            raise SearchSpaceError(f"search {name}: an empty list of choices")
        if len(set(map(str, value))) != len(value):
            raise SearchSpaceError(f"search {name}: a choice is listed twice")
        if not all(isinstance(v, (str, int, float, bool)) for v in value):
            raise SearchSpaceError(f"search {name}: choices must be plain values (text, numbers)")
        return Dimension(name, "choice", choices=tuple(value))
    if isinstance(value, str) and value.strip().startswith("["):
        items = [v.strip() for v in value.strip().strip("[]").split(",")]
        return parse_dimension(name, [v for v in items if v] if any(items) else [])
    match = _CALL.match(value) if isinstance(value, str) else None
    if match is None:
        raise SearchSpaceError(f"search {name}: {value!r} is not a range; use {_KINDS} or [a, b]")
    kind, args = match.group(1), [a for a in match.group(2).split(",") if a.strip()]
    if len(args) != 2:
        raise SearchSpaceError(f"search {name}: {kind}() takes (low, high), got {value!r}")
    whole = kind in ("int", "logint")
    low, high = (_number(name, a, whole) for a in args)
    if not low < high:
        raise SearchSpaceError(f"search {name}: low must be below high in {value!r}")
    log = kind.startswith("log")
    if log and low <= 0:
        raise SearchSpaceError(f"search {name}: a log range needs low > 0, got {value!r}")
    return Dimension(name, "int" if whole else "float", low, high, log)


def parse_space(raw: Any, params: dict[str, Any]) -> dict[str, Dimension]:
    """A ``search:`` mapping, each key a pipeline param."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise SearchSpaceError("search: must be a mapping of param name to range")
    space = {}
    for name, value in raw.items():
        if str(name) not in params:
            known = ", ".join(sorted(params)) or "none"
            raise SearchSpaceError(f"search {name}: not a pipeline param (known: {known})")
        space[str(name)] = parse_dimension(str(name), value)
    return space


def parse_space_options(items: list[str], params: dict[str, Any]) -> dict[str, Dimension]:
    """``["lr=loguniform(1e-4,1e-1)", "opt=[adam,sgd]"]`` from ``--space``."""
    raw: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise SearchSpaceError(f"--space {item!r}: expected name=range, e.g. lr=uniform(0,1)")
        raw[key.strip()] = value
    return parse_space(raw, params)


def parse_objective(text: str) -> tuple[str, str]:
    """``"test_accuracy:max"`` -> ``("test_accuracy", "maximize")``."""
    name, _, way = text.partition(":")
    ways = {"max": "maximize", "min": "minimize", "maximize": "maximize", "minimize": "minimize"}
    if not name.strip() or way.strip().lower() not in ways:
        raise SearchSpaceError(
            f"--objective {text!r}: expected METRIC:max or METRIC:min, e.g. test_accuracy:max"
        )
    return name.strip(), ways[way.strip().lower()]
