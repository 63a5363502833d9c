"""The line a cell run's row shows: its label, or the statement that tells it apart."""

from __future__ import annotations

import pytest

from jupyter_mlops.tracking.preview import PREVIEW_LENGTH, cell_label, describe, telling_line


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("lr = 0.01\nepochs = 3", "lr = 0.01"),
        ("import numpy as np\nimport pandas as pd\nX = np.zeros(3)", "X = np.zeros(3)"),
        ("import numpy as np\nfrom sklearn import datasets", "import numpy, sklearn"),
        ("from . import helpers\nimport numpy", "import ., numpy"),
        ('"""Load the data."""\n# comment\n\ndf = load()\ndf', "df = load()"),
        (
            "import torch\nmodel = Net(\n    hidden=64,\n    depth=2)\n",
            "model = Net( hidden=64, depth=2)",
        ),
        ("for epoch in range(3):\n    train(epoch)", "for epoch in range(3):"),
        ("@torch.no_grad()\ndef evaluate(model):\n    return 1", "def evaluate(model):"),
        ("%%time\nimport time\ntime.sleep(1)", "time.sleep(1)"),
        ("%matplotlib inline\nimport matplotlib\nplt.plot([1, 2])", "plt.plot([1, 2])"),
        ("%mlops log f1=0.8", "%mlops log f1=0.8"),
        ("%%bash\necho hi", "echo hi"),
        ("x = (\n", "x = ("),
        ("df", "df"),
        ("", ""),
        ("# only a comment", "# only a comment"),
    ],
)
def test_the_telling_line_skips_imports_comments_and_magics(source: str, expected: str) -> None:
    assert telling_line(source) == expected


def test_a_long_statement_is_cut_to_the_preview_length() -> None:
    line = telling_line("value = " + " + ".join(["1"] * 200))
    assert len(line) == PREVIEW_LENGTH
    assert line.endswith("…")


def test_a_label_comment_names_the_cell() -> None:
    source = "import torch\n#  MLOps:  train the baseline  \nmodel.fit(X, y)"
    assert cell_label(source) == "train the baseline"
    assert describe(source) == ("train the baseline", "train the baseline")
    assert describe("model.fit(X, y)") == ("model.fit(X, y)", None)
    # an empty label or a mention in a string is no label
    assert cell_label("# mlops:\nx = 1") is None
    assert cell_label('s = "# mlops: no"') is None
