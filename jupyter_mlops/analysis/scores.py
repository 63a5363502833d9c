"""From a model's raw outputs to what evaluation needs: the task, the predicted labels (or
values), the class probabilities and the class each probability column stands for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..exceptions import MlopsError

_TASKS = ("classifier", "regressor")


@dataclass
class Scores:
    task: str
    #: predicted labels (classifier) or values (regressor), one per row
    predicted: Any
    #: class probabilities ``[N, K]`` of a classifier
    proba: Any = None
    #: the label of each probability column
    classes: list[Any] | None = None

    def chosen(self) -> Any:
        """The probability column of each row's predicted class (None for a regressor)."""
        import numpy as np

        return None if self.proba is None else np.argmax(self.proba, axis=1)


def _softmax(x: Any) -> Any:
    import numpy as np

    z = np.exp(x - x.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def interpret(outputs: dict[str, Any], y_true: Any, model_type: str | None) -> Scores:
    """Read ``outputs`` (name -> array) as a classifier's or a regressor's answers."""
    import numpy as np

    if model_type is not None and model_type not in _TASKS:
        raise MlopsError(f"model_type {model_type!r}: use 'classifier' or 'regressor'")
    tables = [v for v in outputs.values() if v.ndim == 2 and v.shape[1] > 1 and v.dtype.kind == "f"]
    labels = next((v for k, v in outputs.items() if k == "label" or v.dtype.kind in "iuOUSb"), None)
    task = model_type or ("classifier" if tables or labels is not None else "regressor")
    if task == "regressor":
        values = next((v for v in outputs.values() if v.dtype.kind == "f"), None)
        if values is None or values.reshape(len(values), -1).shape[1] != 1:
            raise MlopsError(
                "model_type='regressor' needs a model with one number per row; its outputs "
                f"are {', '.join(f'{k} {list(v.shape)}' for k, v in outputs.items())}"
            )
        return Scores("regressor", values.reshape(-1))
    if not tables:
        raise MlopsError(
            "a classifier is evaluated on its class scores, and this model returns none "
            f"(outputs: {', '.join(f'{k} {list(v.shape)}' for k, v in outputs.items())})"
        )
    raw = outputs.get("probabilities", tables[0])
    in_unit = raw.min() >= 0 and raw.max() <= 1 and np.allclose(raw.sum(axis=1), 1, atol=1e-3)
    proba = raw if in_unit else _softmax(raw.astype("float64"))
    k = proba.shape[1]
    index = np.argmax(proba, axis=1)
    truth = np.unique(np.asarray(y_true))
    if labels is not None:
        labels = labels.reshape(-1)
        known = np.unique(np.concatenate([truth.astype(labels.dtype), labels]))
        if len(known) == k:
            classes = list(known)
        else:  # the label each column stands for, from the rows where it won
            classes = [labels[index == j][0] if (index == j).any() else j for j in range(k)]
        return Scores("classifier", labels, proba, classes)
    if truth.dtype.kind in "iu" and truth.min() >= 0 and truth.max() < k:
        classes = list(range(k))
    elif len(truth) == k:
        classes = list(truth)
    else:
        raise MlopsError(
            f"the model scores {k} classes but the target holds {len(truth)} distinct values "
            f"({', '.join(map(str, truth[:10]))}): give integer labels 0..{k - 1}"
        )
    return Scores("classifier", np.asarray(classes)[index], proba, classes)
