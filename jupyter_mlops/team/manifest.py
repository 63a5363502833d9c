"""Deployment files for serving platforms that speak the Open Inference Protocol (KServe v2):
a registered model's ONNX file laid out for KServe, Triton or MLServer, with its manifest.

Our own model server already answers ``/v2/models/<name>/infer``; these files move the same
model to a platform that scales it, and a client keeps the same requests.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..config import Settings, load_settings
from ..exceptions import MlopsError, UsageError

TARGETS = ("kserve", "triton", "mlserver")

# ONNX TensorProto element types -> Triton data types
_TRITON_TYPES = {
    1: "TYPE_FP32",
    2: "TYPE_UINT8",
    3: "TYPE_INT8",
    5: "TYPE_INT16",
    6: "TYPE_INT32",
    7: "TYPE_INT64",
    9: "TYPE_BOOL",
    10: "TYPE_FP16",
    11: "TYPE_FP64",
}


@dataclass
class Tensor:
    name: str
    datatype: str
    #: -1 for a dynamic axis (the batch)
    dims: list[int]


@dataclass
class Manifest:
    """What was written for which platform."""

    target: str
    model: str
    version: str
    directory: str
    files: list[str]
    inputs: list[Tensor] = field(default_factory=list)
    outputs: list[Tensor] = field(default_factory=list)
    next_steps: str = ""

    def summary(self) -> str:
        lines = [f"{self.target} files for {self.model} v{self.version} in {self.directory}:"]
        lines += [f"  {f}" for f in self.files]
        if self.next_steps:
            lines.append(self.next_steps)
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def dns_name(name: str) -> str:
    """A Kubernetes resource name (RFC 1123 label) for a model name."""
    slug = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:63].strip("-")
    return slug or "model"


def onnx_signature(path: Path) -> tuple[list[Tensor], list[Tensor]]:
    """Inputs and outputs of an ONNX graph, in Triton's terms."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    initializers = {i.name for i in model.graph.initializer}

    def tensors(values: Any) -> list[Tensor]:
        out = []
        for value in values:
            if value.name in initializers:
                continue
            kind = value.type.tensor_type
            dtype = _TRITON_TYPES.get(kind.elem_type)
            if dtype is None:
                raise MlopsError(
                    f"{value.name}: ONNX element type {kind.elem_type} has no Triton type"
                )
            dims = [d.dim_value if d.HasField("dim_value") else -1 for d in kind.shape.dim]
            out.append(Tensor(value.name, dtype, dims))
        return out

    return tensors(model.graph.input), tensors(model.graph.output)


def _pbtxt_tensors(kind: str, tensors: list[Tensor]) -> str:
    items = [
        f'  {{ name: "{t.name}" data_type: {t.datatype} dims: [ {", ".join(map(str, t.dims))} ] }}'
        for t in tensors
    ]
    return f"{kind} [\n" + ",\n".join(items) + "\n]"


def triton_config(name: str, inputs: list[Tensor], outputs: list[Tensor]) -> str:
    """``config.pbtxt`` for Triton's ONNX Runtime backend.

    ``max_batch_size: 0`` keeps the batch axis in ``dims`` as -1, exactly as the ONNX graph
    declares it, so Triton takes the same tensors our server does.
    """
    return "\n".join(
        [
            f'name: "{name}"',
            'backend: "onnxruntime"',
            "max_batch_size: 0",
            _pbtxt_tensors("input", inputs),
            _pbtxt_tensors("output", outputs),
            "instance_group [ { kind: KIND_CPU count: 1 } ]",
            "",
        ]
    )


def _repository(root: Path, name: str, onnx_file: Path, inputs: Any, outputs: Any) -> list[Path]:
    """Triton's model repository: ``<name>/config.pbtxt`` and ``<name>/1/model.onnx``."""
    version_dir = root / name / "1"
    version_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(onnx_file, version_dir / "model.onnx")
    config = root / name / "config.pbtxt"
    config.write_text(triton_config(name, inputs, outputs), encoding="utf-8")
    return [config, version_dir / "model.onnx"]


def _inference_service(name: str, storage_uri: str, model: str, version: str) -> str:
    import yaml

    doc = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": name,
            "annotations": {"jupyter-mlops/model": model, "jupyter-mlops/version": version},
        },
        "spec": {
            "predictor": {
                "model": {
                    "modelFormat": {"name": "onnx"},
                    "protocolVersion": "v2",
                    "runtime": "kserve-tritonserver",
                    "storageUri": storage_uri,
                    "resources": {
                        "requests": {"cpu": "1", "memory": "1Gi"},
                        "limits": {"cpu": "1", "memory": "1Gi"},
                    },
                }
            }
        },
    }
    return str(yaml.safe_dump(doc, sort_keys=False))


def write_manifest(
    spec: str,
    target: str,
    out_dir: str | Path | None = None,
    *,
    storage_uri: str | None = None,
    settings: Settings | None = None,
) -> Manifest:
    """Write ``target``'s files for registered model ``spec`` (``name@alias`` or ``name/3``).

    >>> write_manifest("digits@champion", "kserve").files  # doctest: +SKIP
    ['inferenceservice.yaml', 'model_repository/digits/config.pbtxt', ...]
    """
    from ..serving.follow import download_version
    from ..serving.manager import resolve_version

    if target not in TARGETS:
        raise UsageError(f"unknown target {target!r} (known: {', '.join(TARGETS)})")
    settings = settings or load_settings()
    model, version, _alias = resolve_version(settings, spec)
    name = dns_name(model)
    out = settings.resolve_inside(out_dir or Path("deploy") / target / f"{name}-v{version}")
    if out.exists() and any(out.iterdir()):
        raise MlopsError(f"{settings.relative(out)} is not empty: choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    fetched = out / ".download"
    try:
        onnx_file = download_version(
            settings.tracking_uri, settings.registry_uri, model, version, fetched
        )
    except FileNotFoundError as err:
        shutil.rmtree(out, ignore_errors=True)
        raise MlopsError(f"{model} v{version}: {err}; only ONNX models can be exported") from None
    inputs, outputs = onnx_signature(onnx_file)
    written: list[Path] = []
    if target in ("kserve", "triton"):
        written += _repository(out / "model_repository", name, onnx_file, inputs, outputs)
    if target == "kserve":
        uri = storage_uri or f"pvc://model-store/model_repository/{name}"
        service = out / "inferenceservice.yaml"
        service.write_text(_inference_service(name, uri, model, version), encoding="utf-8")
        written.insert(0, service)
        steps = (
            f"copy model_repository/{name} to {uri}, then: kubectl apply -f "
            f"{settings.relative(service)}"
        )
    elif target == "triton":
        steps = (
            "tritonserver --model-repository "
            f"{settings.relative(out / 'model_repository')}  (HTTP :8000, /v2/models/{name}/infer)"
        )
    else:
        # MLServer's MLflow runtime loads the MLflow model directory as logged (ONNX flavour)
        model_dir = out / name
        shutil.copytree(onnx_file.parent, model_dir / "model")
        settings_file = model_dir / "model-settings.json"
        settings_file.write_text(
            json.dumps(
                {
                    "name": name,
                    "implementation": "mlserver_mlflow.MLflowRuntime",
                    "parameters": {"uri": "./model", "version": version},
                },
                indent=2,
            ),
            encoding="utf-8",
        )
        written += [
            settings_file,
            *sorted(p for p in (model_dir / "model").rglob("*") if p.is_file()),
        ]
        steps = f"pip install mlserver mlserver-mlflow && mlserver start {settings.relative(out)}"
    shutil.rmtree(fetched, ignore_errors=True)
    return Manifest(
        target=target,
        model=model,
        version=version,
        directory=settings.relative(out),
        files=[p.relative_to(out).as_posix() for p in written],
        inputs=inputs,
        outputs=outputs,
        next_steps=steps,
    )
