"""``package()``: a trained model becomes an MLflow ONNX model with parity, signature and card.

Everything that can fail (export, checker, parity) happens in a scratch directory before
anything is written to MLflow, so a failed packaging leaves no half-logged model behind.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .. import store
from ..config import Settings, load_settings
from .card import model_card
from .errors import PackagingError
from .export import as_inputs, check_runs, export_onnx
from .lineage import lineage_of
from .parity import ParityReport, _flat, check_parity
from .quantize import QUANTIZED_TOLERANCE, QuantizedModel, Recheck, quantize_mode
from .requirements import served_requirements

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
#: rows of the training inputs kept as the reference sample for drift checks
REFERENCE_ROWS = 5000

_ONNX_TYPES = {1: "float32", 2: "uint8", 3: "int8", 5: "int16", 6: "int32", 7: "int64",
               8: "string", 9: "bool", 10: "float16", 11: "float64", 12: "uint32",
               13: "uint64"}  # fmt: skip


@dataclass
class PackagedModel:
    """A packaged model: where it is and why it can be trusted."""

    name: str
    model_uri: str
    run_id: str
    path: str
    signature: dict[str, Any]
    parity: dict[str, Any]
    opset: int
    size_bytes: int
    metrics: dict[str, float] = field(default_factory=dict)
    #: what quantization did (sizes, weights, parity) when it was asked for; ``path`` is then
    #: the quantized file, the one served
    quantization: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _specs(values: Any) -> list[dict[str, Any]]:
    out = []
    for v in values:
        tensor = v.type.tensor_type
        # a named or unset dimension is dynamic (the batch axis, a sequence length)
        shape = [d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim]
        dtype = _ONNX_TYPES.get(tensor.elem_type, str(tensor.elem_type))
        out.append({"name": v.name, "dtype": dtype, "shape": shape})
    return out


def _signature(proto: Any) -> dict[str, Any]:
    return {"inputs": _specs(proto.graph.input), "outputs": _specs(proto.graph.output)}


def _reference_frame(reference: Any) -> Any:
    import numpy as np
    import pandas as pd

    if isinstance(reference, pd.DataFrame):
        frame = reference
    else:
        if type(reference).__module__.startswith("torch"):
            reference = reference.detach().cpu().numpy()
        array = np.asarray(reference)
        if array.ndim == 1:
            array = array.reshape(-1, 1)
        if array.ndim != 2:
            raise PackagingError(
                f"reference sample must be a table (2-D), got an array of shape {array.shape}"
            )
        frame = pd.DataFrame(array, columns=[f"f{i}" for i in range(array.shape[1])])
    if len(frame) > REFERENCE_ROWS:
        frame = frame.sample(REFERENCE_ROWS, random_state=0)
    return frame


def package(
    model: Any,
    example_input: Any,
    name: str | None = None,
    tolerance: float = 1e-4,
    *,
    reference: Any = None,
    metrics: dict[str, float] | None = None,
    input_names: list[str] | None = None,
    output_names: list[str] | None = None,
    dynamic: dict[str, dict[int, str]] | None = None,
    other_example: Any = None,
    quantize: bool | str = False,
    quantized_tolerance: float = QUANTIZED_TOLERANCE,
    settings: Settings | None = None,
) -> PackagedModel:
    """Export a ``torch.nn.Module`` (or a scikit-learn estimator, XGBoost's and LightGBM's
    included) to ONNX, check parity, log it as an MLflow model.

    ``example_input`` is a batch: a tensor or array, or a tuple of them for several inputs;
    for a scikit-learn pipeline fitted on a DataFrame, a DataFrame with the fitted columns.
    ``reference`` is a sample of the training inputs kept for drift checks (a DataFrame keeps
    its column names and dtypes); ``metrics`` are recorded on the package run for promotion
    gates (the session's tracked metrics are recorded too). ``tolerance`` is the largest
    absolute difference allowed between the model and onnxruntime.

    A DataFrame becomes one ONNX input per column, named after it, of shape ``[None, 1]``:
    float for float columns, int64 for integer columns, string for object, string and
    category columns (which may not hold missing values; float columns may). A numeric
    array is one float input named ``input``. XGBoost and LightGBM estimators, alone or as the
    last step of a pipeline, convert through onnxmltools (``pip install
    'jupyter-mlops[xgboost]'`` or ``'jupyter-mlops[lightgbm]'``) and are checked the same way.

    For torch models:

    - ``input_names`` / ``output_names`` name the graph's inputs and outputs (one name per
      tensor). By default a model with one input keeps the name ``input`` (what clients of
      earlier versions send); several inputs take the names of ``forward``'s parameters, else
      ``input_0``, ``input_1``, ...; outputs are ``output`` or ``output_0``, ``output_1``, ...
    - The batch axis (0) is always dynamic. ``dynamic={"x": {1: "seq"}}`` makes axis 1 of the
      input ``x`` dynamic too (axes with the same name must stay equal); ``other_example``,
      the same inputs at other sizes, makes dynamic every axis where the two differ. Parity is
      checked at the example's size and at another: ``other_example``'s, or the example
      grown by 3 along each declared axis.

    ``quantize=True`` (or ``"dynamic"``) also makes an int8 copy with onnxruntime's dynamic
    quantization, checked on the same batches against ``quantized_tolerance`` (largest
    absolute difference from the trained model, 0.05 by default; on probabilities for a
    classifier). The version records both checks, and the quantized model is the one logged
    and served. A model with no weights to quantize (a tree ensemble) is refused.

    >>> packaged = jupyter_mlops.package(model, X_test[:8], name="digits")  # doctest: +SKIP
    >>> packaged.parity["max_abs_diff"]  # doctest: +SKIP
    1.2e-07
    >>> jupyter_mlops.package(lstm, tokens[:, :10], dynamic={"input": {1: "seq"}})  # doctest: +SKIP
    >>> jupyter_mlops.package(pipeline, X_test.head(20), name="churn")  # doctest: +SKIP
    >>> small = jupyter_mlops.package(model, X_test[:8], quantize=True)  # doctest: +SKIP
    >>> small.parity["quantized"]["max_abs_diff"], small.size_bytes  # doctest: +SKIP
    (0.002, 6125)
    """
    from .sklearn import is_estimator

    torch_module = _is_torch_module(model)
    if not torch_module and not is_estimator(model):
        raise PackagingError(
            "package() takes a torch.nn.Module or a scikit-learn, XGBoost or LightGBM "
            "estimator, got "
            f"{type(model).__module__}.{type(model).__name__}"
        )
    name = name or type(model).__name__.lower()
    if not _NAME.match(name):
        raise PackagingError(f"model name {name!r}: use letters, digits, '.', '_' and '-'")
    if tolerance < 0:
        raise PackagingError(f"tolerance must be >= 0, got {tolerance}")
    quantization = quantize_mode(quantize, quantized_tolerance)
    torch_only = {
        "input_names": input_names,
        "output_names": output_names,
        "dynamic": dynamic,
        "other_example": other_example,
    }
    given = [k for k, v in torch_only.items() if v is not None]
    if given and not torch_module:
        raise PackagingError(
            f"{', '.join(given)}: for torch models; a scikit-learn model's inputs are named "
            "after the DataFrame's columns (or 'input' for an array)"
        )
    settings = settings or load_settings()
    scratch = Path(tempfile.mkdtemp(prefix="jupyter-mlops-package-"))
    try:
        onnx_path = scratch / "model.onnx"
        if torch_module:
            names = _TorchNames(input_names, output_names, dynamic, other_example)
            exported = _torch_onnx(model, example_input, onnx_path, tolerance, names)
        else:
            exported = _sklearn_onnx(model, example_input, onnx_path, tolerance)
        quantized = None
        if quantization:
            from .quantize import quantize_model

            quantized = quantize_model(
                onnx_path, exported.recheck, exported.parity, quantized_tolerance
            )
        ref = None
        if reference is not None:
            if exported.frame is not None:
                from .tables import table_reference

                reference = table_reference(reference, exported.frame)
            ref = _reference_frame(reference)
        return _log(settings, name, onnx_path, exported, ref, metrics or {}, quantized)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@dataclass
class _Exported:
    """What an exporter hands to ``_log``: the checked model and what MLflow records of it."""

    proto: Any
    parity: ParityReport
    #: the MLflow input schema (named tensors, or named columns for a table)
    inputs: Any
    #: a few rows: an array, a dict of arrays (several inputs) or a DataFrame
    example: Any
    #: the same parity check for another ONNX file (the quantized one) at another tolerance
    recheck: Recheck
    #: the example DataFrame of a table model, in the fitted column order
    frame: Any = None


@dataclass
class _TorchNames:
    inputs: list[str] | None
    outputs: list[str] | None
    dynamic: dict[str, dict[int, str]] | None
    other_example: Any


def _is_torch_module(model: Any) -> bool:
    import sys

    torch = sys.modules.get("torch")  # a torch module exists only if torch is imported
    return torch is not None and isinstance(model, torch.nn.Module)


def _sklearn_onnx(model: Any, example: Any, onnx_path: Path, tolerance: float) -> _Exported:
    from .tables import fitted_on_columns, is_table

    if is_table(example) and fitted_on_columns(model):
        from .tables import check_table_parity, column_schema, export_table

        proto, frame, kinds = export_table(model, example, onnx_path)

        def table_recheck(path: Path, budget: float) -> ParityReport:
            return check_table_parity(model, path, frame, kinds, budget)

        parity = table_recheck(onnx_path, tolerance)
        schema = column_schema(frame, kinds)
        return _Exported(proto, parity, schema, frame.head(5), table_recheck, frame)
    if is_table(example) and not all(k in "biuf" for k in example.dtypes.map(lambda d: d.kind)):
        raise PackagingError(
            "the example DataFrame has non-numeric columns but the estimator was fitted on an "
            "array (it has no column names): fit it on a DataFrame to package it by column"
        )
    from .sklearn import check_sklearn_parity, export_sklearn

    proto, matrix = export_sklearn(model, example, onnx_path)

    def recheck(path: Path, budget: float) -> ParityReport:
        return check_sklearn_parity(model, path, matrix, budget)

    parity = recheck(onnx_path, tolerance)
    return _Exported(proto, parity, _tensor_schema(proto.graph.input), matrix[:5], recheck)


def _torch_onnx(
    model: Any, example_input: Any, onnx_path: Path, tolerance: float, names: _TorchNames
) -> _Exported:
    from . import axes

    inputs = as_inputs(example_input)
    others = as_inputs(names.other_example) if names.other_example is not None else None
    input_names = axes.input_names(model, inputs, names.inputs)
    dynamic = axes.dynamic_axes(input_names, inputs, names.dynamic, others)
    was_training = model.training

    def recheck(path: Path, budget: float) -> ParityReport:
        model.eval()
        try:
            more = [others] if others is not None else None
            return check_parity(model, path, inputs, input_names, budget, others=more, axes=dynamic)
        finally:
            model.train(was_training)

    model.eval()
    try:
        outputs = check_runs(model, inputs)
        n_out = len(_flat(outputs))
        output_names = axes.output_names(n_out, names.outputs, input_names)
        if others is not None:
            check_runs(model, others)
        proto = export_onnx(
            model, inputs, onnx_path, input_names, output_names, axes.dynamic_shapes(dynamic)
        )
        if others is None and axes.beyond_batch(dynamic):
            others = axes.grown(inputs, dynamic)
        if others is not None and axes.mark_dynamic_outputs(
            proto, _flat(outputs), _flat(check_runs(model, others)), inputs, others, dynamic
        ):
            onnx_path.write_bytes(proto.SerializeToString())
        parity = recheck(onnx_path, tolerance)
    finally:
        model.train(was_training)
    feed = {n: t[:5].numpy() for n, t in zip(input_names, inputs, strict=True)}
    example = next(iter(feed.values())) if len(feed) == 1 else feed
    return _Exported(proto, parity, _tensor_schema(proto.graph.input), example, recheck)


def _tensor_schema(values: Any) -> Any:
    """Named MLflow tensor specs of ONNX graph inputs or outputs; -1 for a dynamic axis."""
    import numpy as np
    from mlflow.types import ColSpec, Schema, TensorSpec

    specs: list[ColSpec | TensorSpec] = []
    for spec in _specs(values):
        dtype = np.dtype(object) if spec["dtype"] == "string" else np.dtype(spec["dtype"])
        specs.append(TensorSpec(dtype, tuple(spec["shape"]), spec["name"]))
    return Schema(specs)


@contextlib.contextmanager
def _without_serving_input_warning() -> Iterator[None]:
    import logging

    logger = logging.getLogger("mlflow.models.model")

    def keep(record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Failed to validate serving input example")

    logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)


def _log(
    settings: Settings,
    name: str,
    onnx_path: Path,
    exported: _Exported,
    reference: Any,
    extra_metrics: dict[str, float],
    quantized: QuantizedModel | None = None,
) -> PackagedModel:
    import mlflow
    from mlflow.entities import Metric, Param

    proto, parity = exported.proto, exported.parity
    lineage = lineage_of(settings)
    client = store.client(settings)
    store.use_fluent(settings)
    signature = _signature(proto)
    opset = max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=0)
    # a quantized model, once it passed its own check, is the one logged and served
    served, served_path = (quantized.proto, quantized.path) if quantized else (proto, onnx_path)
    size = served_path.stat().st_size
    metrics = {**lineage.metrics, **{k: float(v) for k, v in extra_metrics.items()}}
    parity_dict = parity.to_dict()
    if quantized:
        parity_dict["quantized"] = quantized.parity.to_dict()
    tags = {
        "mlops.kind": "package",
        "mlops.model_name": name,
        "mlops.parity_passed": str(parity.passed).lower(),
        "mlops.parity": json.dumps(parity_dict),
        "mlops.signature": json.dumps(signature)[:8000],
        **(quantized.tags() if quantized else {}),
    }
    if lineage.parent_run_id:
        tags["mlflow.parentRunId"] = lineage.parent_run_id
    if lineage.cell_record_id:
        tags["mlops.cell_record_id"] = lineage.cell_record_id
    if lineage.notebook:
        tags["mlflow.source.name"] = lineage.notebook
        tags["mlflow.source.type"] = "NOTEBOOK"
    run = client.create_run(lineage.experiment_id, tags=tags, run_name=f"package {name}")
    run_id = run.info.run_id
    try:
        now = int(time.time() * 1000)
        params = [Param(k, str(v)[:6000]) for k, v in list(lineage.params.items())[:100]]
        logged = [Metric(k, float(v), now, 0) for k, v in metrics.items()]
        logged += [
            Metric("mlops.parity_max_abs_diff", parity.max_abs_diff, now, 0),
            Metric("mlops.parity_max_rel_diff", parity.max_rel_diff, now, 0),
            *(Metric(k, v, now, 0) for k, v in (quantized.metrics() if quantized else {}).items()),
        ]
        client.log_batch(run_id, metrics=logged, params=params)
        import mlflow.onnx
        from mlflow.models import ModelSignature

        mlflow_signature = ModelSignature(exported.inputs, _tensor_schema(proto.graph.output))
        quiet: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
        if exported.frame is not None:
            # MLflow's ONNX pyfunc feeds each column as a 1-D array, which the [None, 1]
            # inputs refuse (our server reshapes): its trial run of the example could only
            # fail, so its warning is not shown
            quiet = _without_serving_input_warning()
        with mlflow.start_run(run_id=run_id), quiet:
            info = mlflow.onnx.log_model(
                onnx_model=served,
                name="model",
                signature=mlflow_signature,
                input_example=exported.example,
                onnx_execution_providers=["CPUExecutionProvider"],
                pip_requirements=served_requirements(),
            )
        card = model_card(
            name=name,
            source_run_id=lineage.parent_run_id or run_id,
            notebook=lineage.notebook,
            cell_record_id=lineage.cell_record_id,
            params=lineage.params,
            metrics=metrics,
            datasets=lineage.datasets,
            parity=parity_dict,
            signature=signature,
            opset=opset,
            size_bytes=size,
            quantization=quantized.summary() if quantized else None,
        )
        client.log_text(run_id, card, "model_card.md")
        if reference is not None:
            with tempfile.TemporaryDirectory() as tmp:
                ref_path = Path(tmp) / "reference.parquet"
                reference.to_parquet(ref_path)
                client.log_artifact(run_id, str(ref_path))
        keep = settings.state_dir / "packages" / run_id
        keep.mkdir(parents=True, exist_ok=True)
        shutil.copy(served_path, keep / "model.onnx")
        if quantized:  # the float model stays at hand, beside the served one
            shutil.copy(onnx_path, keep / "model.float.onnx")
            client.log_artifact(run_id, str(keep / "model.float.onnx"))
        client.set_terminated(run_id, "FINISHED")
    except Exception:
        client.set_terminated(run_id, "FAILED")
        raise
    return PackagedModel(
        name=name,
        model_uri=info.model_uri,
        run_id=run_id,
        path=str(keep / "model.onnx"),
        signature=signature,
        parity=parity_dict,
        opset=opset,
        size_bytes=size,
        metrics=metrics,
        quantization=quantized.summary() if quantized else None,
    )
