"""What drift can compare: a notebook's tables, a model version's reference sample, a
deployment's captured traffic. One name for each, so every door offers the same choices."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from .. import store
from ..config import Settings
from ..exceptions import NotFoundError, UsageError
from .drift import DriftReport, drift

KINDS = ("variable", "reference", "traffic")
_FEATURE = re.compile(r"f\d+")


@dataclass(frozen=True)
class DriftSource:
    """``kind`` is variable / reference / traffic; ``key`` a variable name, ``model/version``
    or a deployment id."""

    kind: str
    key: str

    @property
    def label(self) -> str:
        if self.kind == "variable":
            return f"variable {self.key}"
        if self.kind == "reference":
            return f"reference sample of {self.key.replace('/', ' v')}"
        return f"traffic of {self.key}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "label": self.label}


def _is_table(value: Any) -> bool:
    module = type(value).__module__.split(".")[0]
    shape = getattr(value, "shape", None)
    return module in ("pandas", "numpy") and shape is not None and len(shape) == 2


def list_sources(
    namespace: Mapping[str, Any] | None, settings: Settings, *, versions_per_model: int = 5
) -> list[DriftSource]:
    """Tables in ``namespace``, reference samples of the newest versions, captured traffic."""
    from ..registry.service import models
    from ..serving.manager import deployments

    found = [
        DriftSource("variable", name)
        for name, value in sorted((namespace or {}).items())
        if not name.startswith("_") and _is_table(value)
    ]
    client = store.client(settings)
    for model in models(settings=settings):
        for version in reversed(model.versions[-versions_per_model:]):
            if version.run_id and any(
                a.path == "reference.parquet" for a in client.list_artifacts(version.run_id)
            ):
                found.append(DriftSource("reference", f"{model.name}/{version.version}"))
    from ..serving.capture import has_capture

    for d in deployments(settings=settings):
        if has_capture(settings.state_dir / "inference" / d.id):
            found.append(DriftSource("traffic", d.id))
    return found


def load_source(
    source: DriftSource,
    namespace: Mapping[str, Any] | None,
    settings: Settings,
    *,
    window_s: float | None = None,
) -> Any:
    """The source as a DataFrame (traffic: its input columns in the window, by their names
    for a column model, ``f0..fn`` for a tensor model)."""
    import pandas as pd

    if source.kind == "variable":
        if namespace is None or source.key not in namespace:
            raise NotFoundError(f"no variable {source.key!r} in this notebook")
        value = namespace[source.key]
        if not _is_table(value):
            raise UsageError(f"variable {source.key!r} is not a table (a DataFrame or 2-D array)")
        if isinstance(value, pd.DataFrame):
            return value
        return pd.DataFrame(value, columns=[f"f{i}" for i in range(value.shape[1])])
    if source.kind == "reference":
        from .monitor import reference_sample

        model, _, version = source.key.partition("/")
        return reference_sample(settings, model, version)
    if source.kind == "traffic":
        from ..serving.capture import input_columns
        from ..serving.manager import inference_log

        since = time.time() - window_s if window_s else None
        frame = inference_log(source.key, since=since, settings=settings)
        return frame[input_columns(frame)]
    raise UsageError(f"drift source kind {source.kind!r}: choose from {', '.join(KINDS)}")


def align(reference: Any, current: Any) -> tuple[Any, Any]:
    """Tables are compared by column name (a column model's traffic carries the real ones).
    Only when one side's columns are the anonymous ``f0..fn`` (a tensor model's traffic, an
    array) and the other has as many under other names are they matched by position."""
    if {str(c) for c in reference.columns} == {str(c) for c in current.columns}:
        return reference, current
    ref_f = all(_FEATURE.fullmatch(str(c)) for c in reference.columns)
    cur_f = all(_FEATURE.fullmatch(str(c)) for c in current.columns)
    if ref_f != cur_f and len(reference.columns) == len(current.columns):
        if cur_f:
            reference = reference.set_axis(list(current.columns), axis=1)
        else:
            current = current.set_axis(list(reference.columns), axis=1)
    return reference, current


def drift_between(
    reference: DriftSource,
    current: DriftSource,
    namespace: Mapping[str, Any] | None,
    settings: Settings,
    *,
    window_s: float | None = None,
) -> DriftReport:
    """``drift()`` of two named sources.

    >>> drift_between(DriftSource("reference", "digits/3"), DriftSource("traffic", "prod"),
    ...               None, settings)  # doctest: +SKIP
    """
    ref = load_source(reference, namespace, settings, window_s=window_s)
    cur = load_source(current, namespace, settings, window_s=window_s)
    return drift(*align(ref, cur))
