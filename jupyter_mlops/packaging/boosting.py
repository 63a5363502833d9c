"""XGBoost and LightGBM estimators through onnxmltools, the converters made for them.

onnxmltools' converters are registered with skl2onnx, so a boosting model packages the way a
scikit-learn estimator does, alone or as the last step of a pipeline, with the same parity
check. Each library is an optional extra: ``pip install 'jupyter-mlops[xgboost]'`` or
``'jupyter-mlops[lightgbm]'``.
"""

from __future__ import annotations

import importlib
from typing import Any

from .errors import PackagingError

#: library -> the estimators onnxmltools converts, and whether each is a classifier
_ESTIMATORS = {
    "xgboost": {"XGBClassifier": True, "XGBRegressor": False},
    "lightgbm": {"LGBMClassifier": True, "LGBMRegressor": False},
}
#: skl2onnx writes ai.onnx.ml 5 by default, which onnxmltools' converters do not know yet
ML_OPSET = 3
_registered: set[str] = set()


def library(model: Any) -> str | None:
    """``xgboost`` or ``lightgbm`` for an estimator of theirs, else ``None``."""
    top = type(model).__module__.split(".")[0]
    return top if top in _ESTIMATORS else None


def _import(module: str, extra: str, needed_by: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise PackagingError(
            f"packaging {needed_by} needs {module.split('.')[0]}, which is not installed: "
            f"pip install 'jupyter-mlops[{extra}]'"
        ) from None


def register_converters(libraries: set[str], needed_by: str) -> None:
    """Teach skl2onnx the estimators of ``libraries`` (once per process)."""
    for lib in sorted(libraries):
        _import(lib, lib, needed_by)
        _import("onnxmltools", lib, needed_by)
        if lib in _registered:
            continue
        from skl2onnx import update_registered_converter
        from skl2onnx.common.shape_calculator import (
            calculate_linear_classifier_output_shapes,
            calculate_linear_regressor_output_shapes,
        )

        if lib == "xgboost":
            from onnxmltools.convert.xgboost.operator_converters.XGBoost import (
                convert_xgboost as converter,
            )

            alias = "XGBoost"
        else:
            from onnxmltools.convert.lightgbm.operator_converters.LightGbm import (
                convert_lightgbm as converter,
            )

            alias = "LightGbm"
        module = importlib.import_module(lib)
        for name, classifier in _ESTIMATORS[lib].items():
            shapes = (
                calculate_linear_classifier_output_shapes
                if classifier
                else calculate_linear_regressor_output_shapes
            )
            # the options skl2onnx passes on: probabilities as a tensor (zipmap off)
            options = {"nocl": [True, False], "zipmap": [True, False, "columns"]}
            update_registered_converter(
                getattr(module, name),
                f"{alias}{name}",
                shapes,
                converter,
                options=options if classifier else None,
            )
        _registered.add(lib)


def prepared(model: Any, columns: list[str]) -> Any:
    """The model as onnxmltools can convert it, fed by the graph inputs named ``columns``.

    XGBoost's tree dump names features after the columns it was fitted on, and its converter
    reads only ``f0, f1, ...``: a copy without the names converts (the order is the fitted
    one either way). A boosting model alone takes one matrix: fitted on a DataFrame, it is
    converted behind a pass-through ``ColumnTransformer``, so that each column stays an input.
    """
    import copy

    from .sklearn import steps

    named = [
        s for _, s in steps(model, []) if library(s) == "xgboost" and s.get_booster().feature_names
    ]
    if named:
        model = copy.deepcopy(model)
        for _, step in steps(model, []):
            if library(step) == "xgboost":
                step.get_booster().feature_names = None
    if library(model) is None or len(columns) < 2:
        return model
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    # fitting a pass-through only learns the column names
    front = ColumnTransformer([("columns", "passthrough", columns)])
    front.fit(pd.DataFrame([[0.0] * len(columns)], columns=columns))
    return Pipeline([("columns", front), ("model", model)])
