"""What ``evaluate()`` scores: a packaged ONNX model (by URI or ``PackagedModel``) or a torch
module still in memory (the standard pipeline evaluates before it packages).

Either way the result is a ``Scorer``: the feature columns it reads and a function from a
DataFrame to scores (class probabilities, or one number per row for a regressor).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import store
from ..config import Settings
from ..exceptions import MlopsError, NotFoundError

_REGISTERED = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[^/]+))$")
_LOGGED = re.compile(r"^models:/(?P<id>m-[0-9a-f]+)$")
_RUN = re.compile(r"^runs:/(?P<run>[0-9a-f]+)/(?P<path>.+)$")
_URI_FORMS = (
    "runs:/<run id>/model, models:/<name>/<version>, models:/<name>@<alias>, "
    "models:/m-<logged model id> or a PackagedModel"
)
_ORT_TYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(bool)": "bool",
    "tensor(string)": "object",
}


@dataclass
class Scorer:
    """A model ready to score a DataFrame of features."""

    #: the model's name (registered, or as packaged), for ``mlops.yaml``'s ``models:``
    name: str | None
    model_uri: str | None
    #: the run that logged the model (the package run), None for a module in memory
    source_run_id: str | None
    version: str | None
    #: "onnx" or "torch"
    flavor: str
    #: columns the model reads by name (a table model), None when it takes one matrix
    columns: list[str] | None
    #: features -> raw outputs: probabilities/logits ``[N, K]`` and maybe labels, or values
    run: Callable[[Any], dict[str, Any]]
    #: the torch module, for captum
    module: Any = None


def resolve(model: Any, settings: Settings) -> Scorer:
    """A ``Scorer`` for a URI, a ``PackagedModel`` or a ``torch.nn.Module``."""
    if _is_torch(model):
        return _torch_scorer(model)
    uri = getattr(model, "model_uri", model)
    if not isinstance(uri, str):
        raise MlopsError(
            f"evaluate() takes a model URI ({_URI_FORMS}) or a torch.nn.Module, got "
            f"{type(model).__module__}.{type(model).__name__}"
        )
    name, run_id, version = _locate(uri, settings)
    name = getattr(model, "name", None) or name
    path = _download(uri, settings)
    return _onnx_scorer(path, name, uri, run_id, version)


def _locate(uri: str, settings: Settings) -> tuple[str | None, str | None, str | None]:
    """(model name, source run id, registered version) of a URI; NotFoundError if unknown."""
    from mlflow.exceptions import MlflowException

    client = store.client(settings)
    if found := _REGISTERED.match(uri):
        from ..registry.service import alias_holder, require_model, require_version

        name = found["name"]
        if found["alias"]:
            require_model(client, name)
            holder = alias_holder(client, name, found["alias"])
            if holder is None:
                raise NotFoundError(f"{uri}: model {name!r} has no alias {found['alias']!r}")
            return name, holder.run_id, str(holder.version)
        held = require_version(client, name, found["version"])
        return name, held.run_id, str(held.version)
    if found := _LOGGED.match(uri):
        import mlflow

        store.use_fluent(settings)
        try:
            logged = mlflow.get_logged_model(found["id"])
        except MlflowException:
            raise NotFoundError(f"{uri}: no logged model {found['id']!r}") from None
        return logged.name, logged.source_run_id, None
    if found := _RUN.match(uri):
        try:
            run = client.get_run(found["run"])
        except MlflowException:
            raise NotFoundError(f"{uri}: no run {found['run']!r}") from None
        return run.data.tags.get("mlops.model_name"), found["run"], None
    raise NotFoundError(f"unknown model URI {uri!r}: expected {_URI_FORMS}")


def _download(uri: str, settings: Settings) -> Path:
    import mlflow
    from mlflow.exceptions import MlflowException

    store.use_fluent(settings)
    try:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri))
    except (MlflowException, OSError) as err:
        raise NotFoundError(f"{uri}: cannot fetch the model: {err}") from None
    files = sorted(local.glob("*.onnx"))
    if not files:
        raise MlopsError(f"{uri}: not an ONNX model (no .onnx file); package() it first")
    return files[0]


def _onnx_scorer(
    path: Path, name: str | None, uri: str, run_id: str | None, version: str | None
) -> Scorer:
    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inputs = session.get_inputs()
    names = [o.name for o in session.get_outputs()]
    matrix = len(inputs) == 1 and len(inputs[0].shape) == 2 and inputs[0].shape[1] != 1
    columns = None if matrix else [i.name for i in inputs]

    def run(features: Any) -> dict[str, Any]:
        if matrix:
            dtype = _ORT_TYPES.get(inputs[0].type, "float32")
            width = inputs[0].shape[1]
            if isinstance(width, int) and features.shape[1] != width:
                raise MlopsError(
                    f"the model takes {width} features, the data has {features.shape[1]} "
                    f"columns besides the target and slices ({', '.join(map(str, features))})"
                )
            feed = {inputs[0].name: features.to_numpy(dtype=dtype)}
        else:
            feed = {}
            for spec in inputs:
                column = features[spec.name].to_numpy()
                dtype = _ORT_TYPES.get(spec.type, "float32")
                column = column.astype(str) if dtype == "object" else column.astype(dtype)
                feed[spec.name] = column.reshape(-1, 1).astype(dtype)
        return dict(zip(names, (np.asarray(v) for v in session.run(None, feed)), strict=True))

    return Scorer(name, uri, run_id, version, "onnx", columns, run)


def _is_torch(model: Any) -> bool:
    import sys

    torch = sys.modules.get("torch")
    return torch is not None and isinstance(model, torch.nn.Module)


def _torch_scorer(module: Any) -> Scorer:
    import torch

    module.eval()

    def run(features: Any) -> dict[str, Any]:
        x = torch.tensor(features.to_numpy(dtype="float32"))
        with torch.no_grad():
            out = module(x)
        return {"output": out.numpy()}

    return Scorer(None, None, None, None, "torch", None, run, module)
