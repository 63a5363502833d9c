"""A step's resolved parameters and cache key, from the outputs of the steps before it.

Both ways a pipeline runs use it: the runner that executes steps, and the answer from the
cache alone (``from_cache``), which must reach the same key without MLflow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .._version import __version__
from ..config import Settings
from ..exceptions import MlopsError
from .cache import file_hash, step_cache_key
from .params import check_step_params, resolve_step_params, template_parameters
from .spec import PipelineSpec
from .traffic import traffic_fingerprint


@dataclass(frozen=True)
class ResolvedStep:
    values: dict[str, Any]
    key: str
    #: said once per run when the notebook has no ``parameters`` cell
    warning: str | None = None


def resolve_step(
    spec: PipelineSpec,
    name: str,
    params: dict[str, Any],
    outputs: dict[str, dict[str, Any]],
    settings: Settings,
) -> ResolvedStep:
    """Parameters checked against the notebook, and the key of everything that can change
    the step's result; raises ``MlopsError`` naming the step when something is wrong."""
    step = spec.steps[name]
    upstream = {n: outputs[n] for n in spec.upstream(name)}
    values = resolve_step_params(step, params, outputs)
    declared = template_parameters(step.notebook)
    warning = None
    if declared is None:
        warning = (
            f"step {name!r}: {step.notebook.name} has no cell tagged 'parameters'; "
            "papermill injects the parameters at the top"
        )
    check_step_params(spec, step, values, declared)
    inputs = {}
    for rel in step.inputs:
        path = settings.resolve_inside(rel)
        if not path.is_file():
            raise MlopsError(f"step {name!r}: declared input {rel!r} does not exist")
        inputs[rel] = file_hash(path)
    key = step_cache_key(
        notebook=step.notebook,
        params=values,
        upstream=upstream,
        inputs=inputs,
        version=__version__,
        traffic={d: traffic_fingerprint(settings, d) for d in step.traffic},
    )
    return ResolvedStep(values, key, warning)
