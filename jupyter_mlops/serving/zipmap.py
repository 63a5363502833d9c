"""Classifiers that answer a sequence of maps (skl2onnx's ZipMap) served as tensors.

skl2onnx ends a classifier with ``ZipMap``: the ``[batch, classes]`` probability tensor
becomes one ``{class label: probability}`` map per row (``seq(map(int64, tensor(float)))``),
which neither protocol can carry as a tensor. The server loads such a model with each
ZipMap that makes a graph output replaced by an Identity of its input, so onnxruntime
returns the FP32 tensor itself (nothing converted per request), and keeps the class labels
the ZipMap named: MLflow's protocol answers the maps again (as ``mlflow models serve``
does), the Open Inference Protocol the tensor with its labels in the output's parameters.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: the output parameter (and model metadata field) that names the classes, as JSON text:
#: the protocol's parameter values are strings, numbers or booleans, never lists
CLASS_LABELS = "class_labels"


def has_maps(output_types: list[str]) -> bool:
    return any(t.startswith("seq(map(") for t in output_types)


def unzip(path: Path) -> tuple[bytes, dict[str, list[Any]]]:
    """The model without its output ZipMaps (serialized), and each such output's labels.

    An output that is a sequence of maps made some other way is left as it is.
    """
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(path))  # external data beside the file is read in too
    graph = model.graph
    outputs = {o.name: o for o in graph.output}
    consumed = {name for node in graph.node for name in node.input}
    labels: dict[str, list[Any]] = {}
    for node in graph.node:
        name = node.output[0] if node.output else ""
        if node.op_type != "ZipMap" or name not in outputs or name in consumed:
            continue
        attributes = {a.name: a for a in node.attribute}
        if "classlabels_int64s" in attributes:
            classes: list[Any] = [int(c) for c in attributes["classlabels_int64s"].ints]
        elif "classlabels_strings" in attributes:
            classes = [c.decode("utf-8") for c in attributes["classlabels_strings"].strings]
        else:
            continue
        source = node.input[0]
        node.CopyFrom(helper.make_node("Identity", [source], [name], name=f"{name}_tensor"))
        outputs[name].type.CopyFrom(
            helper.make_tensor_type_proto(TensorProto.FLOAT, [None, len(classes)])
        )
        labels[name] = classes
    if labels and not any(o.domain in ("", "ai.onnx") for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("", 13))  # Identity's domain
    return model.SerializeToString(), labels


def as_maps(rows: list[Any], classes: list[Any]) -> list[dict[str, Any]]:
    """``[[p0, p1, ...], ...]`` as MLflow answers ZipMap's output: ``[{"0": p0, ...}, ...]``."""
    keys = [str(c) for c in classes]
    return [dict(zip(keys, row, strict=True)) for row in rows]
