"""The quantized gate against real packages: a float model and its quantized twin."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from jupyter_mlops.packaging.package import package
from jupyter_mlops.registry.service import PromotionRefused, promote, register

pytestmark = pytest.mark.slow


def test_a_gate_can_require_the_quantized_model(project: Path) -> None:
    (project / "mlops.yaml").write_text(
        "registry:\n  gates:\n    champion:\n      parity: true\n      quantized: true\n"
    )
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 4))
    example = torch.rand(8, 16)
    plain = register(package(model, example, name="scores"))
    small = package(model, example, name="scores", quantize=True)
    quantized = register(small)

    with pytest.raises(PromotionRefused) as err:
        promote("scores", plain.version)
    assert "  - quantized: not quantized: package it with quantize=True and register that" in str(
        err.value
    )

    result = promote("scores", quantized.version)
    assert result.verdict == "passed"
    gate = {g.gate: g for g in result.gates}["quantized"]
    assert gate.passed
    summary = small.quantization
    assert summary is not None
    figure = small.parity["quantized"]["max_abs_diff"]
    assert gate.evidence == (
        f"quantized parity max abs diff {figure:.3g} (budget 0.05), "
        f"{summary['size_bytes']} of {summary['float_size_bytes']} bytes"
    )
    # the same gate passed as an argument, in mlops.yaml's shape
    assert promote("scores", quantized.version, "staging", gates={"quantized": True}).verdict == (
        "passed"
    )
