"""What a cell's AST says it bound, and how values are sorted into params and metrics."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from jupyter_mlops.config import DEFAULT_METRIC_PATTERN
from jupyter_mlops.tracking.capture import MetricNamer, bound_names, dataset_summary, snapshot


@pytest.mark.parametrize(
    ("source", "names"),
    [
        ("a = 1\nb, (c, *d) = 1, (2, 3)", ("a", "b", "c", "d")),
        ("x: int = 1\ny: int\nx += 1", ("x",)),
        ("if True:\n    p = 1\nelse:\n    q = 2", ("p", "q")),
        ("try:\n    t = 1\nexcept Exception:\n    u = 2\nfinally:\n    v = 3", ("t", "u", "v")),
        ("def f():\n    inner = 1\nclass K:\n    attr = 2", ()),
        ("for i in range(3):\n    total = i", ("total",)),
        ("with open('f') as fh:\n    content = 1", ("content",)),
        ("_hidden = 1\nshown = 2", ("shown",)),
        ("print(n := 5)", ("n",)),
        ("import os\nfrom math import pi", ()),
        ("this is not python", ()),
    ],
)
def test_bound_names(source: str, names: tuple[str, ...]) -> None:
    assert bound_names(source) == names


def test_ipython_syntax_goes_through_the_transformer() -> None:
    seen = []

    def transform(src: str) -> str:
        seen.append(src)
        return "files = get_ipython().getoutput('ls')\n"

    assert bound_names("files = !ls", transform) == ("files",)
    assert seen == ["files = !ls"]


def test_metric_names() -> None:
    is_metric = MetricNamer(DEFAULT_METRIC_PATTERN, ["perplexity"])
    for name in ("loss", "val_loss", "test_accuracy", "train_f1", "rmse", "best_score", "auc"):
        assert is_metric(name), name
    for name in ("lossy", "lr", "epochs", "n_scores", "accurate"):
        assert not is_metric(name), name
    assert is_metric("perplexity")


def test_snapshot_sorts_values() -> None:
    ns = {
        "lr": 0.1,
        "epochs": np.int64(5),
        "flag": True,
        "name": "adam",
        "long": "x" * 600,
        "val_loss": np.float32(0.25),
        "bad_loss": math.inf,
        "weird": math.nan,
        "obj": object(),
        "df": pd.DataFrame({"a": [1.0, 2.0]}),
    }
    out = snapshot(ns, ns, MetricNamer(DEFAULT_METRIC_PATTERN), max_param_length=500)
    assert out.params == {"lr": 0.1, "epochs": 5, "flag": True, "name": "adam"}
    assert out.metrics == {"val_loss": 0.25}
    assert set(out.skipped) == {"long", "bad_loss", "weird"}
    assert [d["name"] for d in out.datasets] == ["df"]


def test_dataset_digest_follows_content() -> None:
    a = dataset_summary("a", pd.DataFrame({"x": [1, 2, 3]}))
    b = dataset_summary("a", pd.DataFrame({"x": [1, 2, 4]}))
    c = dataset_summary("a", pd.DataFrame({"x": [[1], [2], [3]]}))  # unhashable cells
    assert a["digest"] != b["digest"]
    assert a == dataset_summary("a", pd.DataFrame({"x": [1, 2, 3]}))
    assert c["rows"] == 3
