"""The Python packages a served ONNX model needs, known without asking MLflow to guess."""

from __future__ import annotations

from importlib.metadata import version


def served_requirements() -> list[str]:
    """Pins of what MLflow's ONNX flavour loads a model with: onnx, onnxruntime and numpy.

    Left to itself, ``log_model`` infers this list by loading the model in a child process
    (3 s on an idle machine, tens of seconds on a busy one) and finds the same pins.
    """
    import mlflow.onnx

    return [*mlflow.onnx.get_default_pip_requirements(), f"numpy=={version('numpy')}"]
