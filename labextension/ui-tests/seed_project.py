"""Seed the project the browser tests serve: a registry with three versions of a tiny model.

``python seed_project.py ROOT`` writes ``ROOT/mlops.yaml`` with gates for ``champion`` and
registers, with the package's own ``register()``:

- v1 (test_accuracy 0.91), promoted to ``champion``;
- v2 (0.95): passes every gate, so the sidebar can promote it;
- v3 (0.50, parity failed): refused by the gates, so the sidebar shows why.

Each has a reference sample, so a deployment of it can be monitored.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

GATES = """\
registry:
  gates:
    champion:
      metrics: {test_accuracy: ">= 0.9"}
      parity: true
      beat_current: test_accuracy
"""

VERSIONS = [(0.91, True), (0.95, True), (0.50, False)]


def tiny_model(settings: object, accuracy: float, parity: bool) -> str:
    """Log an ONNX Identity graph in a run that holds ``test_accuracy``; return its URI."""
    import mlflow
    import mlflow.onnx
    import numpy as np
    import pandas as pd
    from onnx import TensorProto, checker, helper

    from jupyter_mlops import store

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2])],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    checker.check_model(proto)
    experiment = store.get_or_create_experiment(settings, "models")  # type: ignore[arg-type]
    with mlflow.start_run(experiment_id=experiment):
        mlflow.log_metric("test_accuracy", accuracy)
        mlflow.set_tag("mlops.parity_passed", str(parity).lower())
        info = mlflow.onnx.log_model(
            onnx_model=proto, name="model", onnx_execution_providers=["CPUExecutionProvider"]
        )
        # what monitor() compares a deployment's traffic with
        with tempfile.TemporaryDirectory() as tmp:
            reference = pd.DataFrame(
                np.random.default_rng(0).normal(0, 1, (200, 2)), columns=["a", "b"]
            )
            reference.to_parquet(Path(tmp) / "reference.parquet")
            mlflow.log_artifact(str(Path(tmp) / "reference.parquet"))
    return str(info.model_uri)


def seed(root: Path) -> None:
    from jupyter_mlops import store
    from jupyter_mlops.config import load_settings
    from jupyter_mlops.registry.service import promote, register

    root.mkdir(parents=True, exist_ok=True)
    (root / "mlops.yaml").write_text(GATES)
    settings = load_settings(root)
    store.use_fluent(settings)
    for accuracy, parity in VERSIONS:
        register(tiny_model(settings, accuracy, parity), "digits", settings=settings)
    promote("digits", 1, "champion", "first model", settings=settings)


if __name__ == "__main__":
    for key in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        os.environ.pop(key, None)
    seed(Path(sys.argv[1]).resolve())
