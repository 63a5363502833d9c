"""Names and dynamic axes of torch models: real dynamo export, real onnxruntime, a real
SQLite store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from jupyter_mlops import store
from jupyter_mlops.packaging.errors import PackagingError
from jupyter_mlops.packaging.package import package
from tests.conftest import runs_of_kind, settings_for

pytestmark = pytest.mark.slow


class Tagger(nn.Module):
    """An LSTM over a sequence of feature vectors, a score per step."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.lstm = nn.LSTM(4, 8, batch_first=True)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.head(out)


class TwoInputs(nn.Module):
    """Token ids and a mask along the same sequence axis."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Embedding(50, 6)
        self.head = nn.Linear(6, 2)

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        pooled = (self.embed(tokens) * mask.unsqueeze(-1)).sum(1)
        return self.head(pooled)


def mlflow_inputs(project: Path, model_uri: str) -> list[tuple[str | None, tuple[int, ...]]]:
    import mlflow

    store.use_fluent(settings_for(project))
    schema = mlflow.models.get_model_info(model_uri).signature.inputs
    return [(spec.name, tuple(spec.shape)) for spec in schema.inputs]


def test_declared_sequence_axis_lets_an_lstm_take_longer_sequences(project: Path) -> None:
    model = Tagger()
    result = package(model, torch.rand(3, 10, 4), name="tagger", dynamic={"input": {1: "seq"}})

    assert result.signature["inputs"] == [
        {"name": "input", "dtype": "float32", "shape": [-1, -1, 4]}
    ]
    assert result.parity["passed"]
    assert result.parity["axis_sizes"] == {"seq": [10, 13]}
    assert result.parity["batch_sizes"] == [3, 1, 3, 17, 3, 1, 3, 17]
    # the output's sequence axis is declared dynamic too, under the input axis's name
    [output] = result.signature["outputs"]
    assert output["shape"][:2] == [-1, -1]
    graph = onnx.load(result.path).graph
    assert [d.dim_param for d in graph.output[0].type.tensor_type.shape.dim][1] == "seq"
    # packaged at length 10; length 20 runs in onnxruntime and agrees with torch
    session = ort.InferenceSession(result.path, providers=["CPUExecutionProvider"])
    longer = torch.rand(2, 20, 4)
    [got] = session.run(None, {"input": longer.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(got, model(longer).numpy(), atol=1e-5)
    assert mlflow_inputs(project, result.model_uri) == [("input", (-1, -1, 4))]
    card = store.client(settings_for(project)).download_artifacts(
        result.run_id, "model_card.md", str(project)
    )
    text = Path(card).read_text()
    assert "dynamic batch axis, dynamic seq" in text and "- seq sizes checked: [10, 13]" in text


def test_axes_inferred_from_a_second_example_and_names_from_forward(project: Path) -> None:
    model = TwoInputs()
    tokens = torch.randint(0, 50, (4, 7))
    other = torch.randint(0, 50, (2, 12))
    result = package(
        model,
        (tokens, torch.ones(4, 7)),
        name="pooled",
        other_example=(other, torch.ones(2, 12)),
        output_names=["logits"],
    )

    assert result.signature == {
        "inputs": [
            {"name": "tokens", "dtype": "int64", "shape": [-1, -1]},
            {"name": "mask", "dtype": "float32", "shape": [-1, -1]},
        ],
        "outputs": [{"name": "logits", "dtype": "float32", "shape": [-1, 2]}],
    }
    # the two axes change together, so they share one name
    assert result.parity["axis_sizes"] == {"tokens_dim1": [7, 12]}
    session = ort.InferenceSession(result.path, providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["tokens", "mask"]
    long_tokens = torch.randint(0, 50, (3, 30))
    [logits] = session.run(None, {"tokens": long_tokens.numpy(), "mask": np.ones((3, 30), "f4")})
    assert logits.shape == (3, 2)
    assert mlflow_inputs(project, result.model_uri) == [("tokens", (-1, -1)), ("mask", (-1, -1))]


def test_input_names_from_the_call(project: Path) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 3))
    result = package(
        model, torch.rand(6, 5), name="named", input_names=["features"], output_names=["score"]
    )
    assert [i["name"] for i in result.signature["inputs"]] == ["features"]
    assert [o["name"] for o in result.signature["outputs"]] == ["score"]
    session = ort.InferenceSession(result.path, providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["features"]
    assert [o.name for o in session.get_outputs()] == ["score"]
    assert mlflow_inputs(project, result.model_uri) == [("features", (-1, 5))]


def test_bad_names_and_axes_are_refused_before_anything_is_logged(project: Path) -> None:
    model = Tagger()
    example = torch.rand(3, 10, 4)
    cases = [
        (
            {"dynamic": {"input": {3: "seq"}}},
            "dynamic axis 3 of input 'input' does not exist: 'input' has rank 3 "
            "(shape (3, 10, 4)), so its axes are 0 to 2",
        ),
        (
            {"dynamic": {"x": {1: "seq"}}},
            "dynamic names 'x', which is not an input of the model: its inputs are ['input']",
        ),
        (
            {"dynamic": {"input": {1: "sequence length"}}},
            "dynamic axis 1 of input 'input': name it with an identifier such as 'seq', "
            "got 'sequence length'",
        ),
        (
            {"input_names": ["a", "b"]},
            "input_names has 2 name(s) ['a', 'b'] for the model's 1 input(s) (the example: "
            "(3, 10, 4)): give one name per input",
        ),
        (
            {"output_names": ["a", "b"]},
            "output_names has 2 name(s) ['a', 'b'] for the model's 1 output(s): give one name "
            "per output",
        ),
        (
            {"other_example": torch.rand(5, 10, 4)},
            "other_example has the example's sizes on every axis but the batch: give one that "
            "differs along the axes to make dynamic (e.g. a longer sequence)",
        ),
        (
            {"other_example": torch.rand(5, 10)},
            "other_example's input 'input' is torch.float32 of shape (5, 10), the example's "
            "torch.float32 of shape (3, 10, 4): only sizes may differ",
        ),
    ]
    for kwargs, message in cases:
        with pytest.raises(PackagingError) as err:
            package(model, example, name="tagger", **kwargs)  # type: ignore[arg-type]
        assert str(err.value) == message, kwargs
    assert runs_of_kind(project, "package") == []
