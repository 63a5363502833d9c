"""package() end to end for a small MLP and a small CNN, then inference latency of the
packaged ONNX model in onnxruntime against the same model in torch (the anchor), at batch
1 and batch 256."""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import fresh_project

from jupyter_mlops.config import load_settings
from jupyter_mlops.packaging.package import package

REPEATS = {1: 2000, 256: 200}


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))


class SmallCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
        )
        self.head = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv(x).flatten(1))


def latency(fn, batch: np.ndarray, repeats: int) -> float:
    for _ in range(20):
        fn(batch)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(batch)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def main() -> None:
    torch.set_num_threads(1)
    root = fresh_project("package")
    settings = load_settings(root)
    print("package() end to end (export, checker, parity, MLflow model, card), then latency")
    print("single-threaded; median microseconds per call")
    for label, model, shape in (("MLP 64-64-10", mlp(), (64,)), ("CNN 8x8", SmallCNN(), (1, 8, 8))):
        model.eval()
        example = torch.rand(16, *shape)
        start = time.perf_counter()
        packaged = package(model, example, name=label.split()[0].lower(), settings=settings)
        took = time.perf_counter() - start
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        session = ort.InferenceSession(packaged.path, options, providers=["CPUExecutionProvider"])
        diff = packaged.parity["max_abs_diff"]
        print(f"\n{label}: package() {took:.1f} s, parity max abs diff {diff:.2g}")
        for size, repeats in REPEATS.items():
            batch = np.random.default_rng(0).random((size, *shape), dtype=np.float32)

            def run_torch(b: np.ndarray, model: nn.Module = model) -> None:
                with torch.no_grad():
                    model(torch.from_numpy(b))

            def run_onnx(b: np.ndarray, session: ort.InferenceSession = session) -> None:
                session.run(None, {"input": b})

            t_torch = latency(run_torch, batch, repeats)
            t_onnx = latency(run_onnx, batch, repeats)
            print(
                f"  batch {size:>3}: anchor torch no_grad {t_torch:9.1f} us   "
                f"onnxruntime {t_onnx:9.1f} us   RATIO torch / onnxruntime {t_torch / t_onnx:.2f}x"
            )
    print(f"project: {root}")


if __name__ == "__main__":
    main()
