"""package() end to end for a small MLP and a small CNN, then inference latency of the
packaged ONNX model in onnxruntime against the same model in torch (the anchor), at batch
1 and batch 256; then the same for a mixed-type scikit-learn pipeline (one-hot city, imputed
and scaled numbers with missing values, logistic regression) against the fitted pipeline;
then dynamic int8 quantization (package(quantize=True)) of the MLP and of an LSTM against
their float ONNX models (the anchor): latency ratio, parity and file sizes."""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pandas as pd
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


class Tagger(nn.Module):
    """An LSTM over a sequence of feature vectors, a score per step."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(32, 128, batch_first=True)
        self.head = nn.Linear(128, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.head(out)


def session_of(path: str | Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def quantized_benchmark(settings: Any) -> None:
    print("\ndynamic quantization (int8 weights): the quantized ONNX model against the float one")
    print("  parity: max abs diff from torch over the float check's batches (budget 0.05)")
    for label, model, shape in (
        ("MLP 64-64-10", mlp(), (64,)),
        ("LSTM 32->128, seq 20", Tagger(), (20, 32)),
    ):
        model.eval()
        example = torch.rand(16, *shape)
        dynamic = {"input": {1: "seq"}} if len(shape) == 2 else None
        start = time.perf_counter()
        packaged = package(
            model, example, name="q-" + label.split()[0].lower(), dynamic=dynamic,
            quantize=True, settings=settings,
        )  # fmt: skip
        took = time.perf_counter() - start
        q = packaged.quantization or {}
        float_path = Path(packaged.path).with_name("model.float.onnx")
        f_session, q_session = session_of(float_path), session_of(packaged.path)
        print(
            f"\n{label}: package(quantize=True) {took:.1f} s, parity max abs diff float "
            f"{packaged.parity['max_abs_diff']:.2g}, quantized "
            f"{packaged.parity['quantized']['max_abs_diff']:.2g}; file {q['float_size_bytes']} "
            f"-> {q['size_bytes']} bytes ({q['float_size_bytes'] / q['size_bytes']:.2f}x smaller)"
        )
        for size, repeats in REPEATS.items():
            batch = np.random.default_rng(0).random((size, *shape), dtype=np.float32)
            t_float = latency(lambda b, s=f_session: s.run(None, {"input": b}), batch, repeats)
            t_q = latency(lambda b, s=q_session: s.run(None, {"input": b}), batch, repeats)
            want = model(torch.from_numpy(batch)).detach().numpy()
            diff = float(np.abs(q_session.run(None, {"input": batch})[0] - want).max())
            print(
                f"  batch {size:>3}: anchor float onnxruntime {t_float:9.1f} us   quantized "
                f"{t_q:9.1f} us   RATIO float / quantized {t_float / t_q:.2f}x   "
                f"(max abs diff on this batch {diff:.2g})"
            )


def customers(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "city": rng.choice(["Paris", "Lyon", "Nice", "Lille", "Brest"], rows),
            "age": rng.normal(40, 12, rows),
            "income": rng.normal(50_000, 12_000, rows),
            "rooms": rng.integers(1, 6, rows),
        }
    )
    frame.loc[rng.random(rows) < 0.1, "age"] = np.nan
    frame.loc[rng.random(rows) < 0.05, "income"] = np.nan
    return frame


def mixed_pipeline(frame: pd.DataFrame) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    prep = ColumnTransformer(
        [
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["city"]),
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), ["age", "income", "rooms"]),
        ]
    )
    target = (frame["income"].fillna(50_000) > 50_000) ^ frame["city"].isin(["Paris", "Nice"])
    return Pipeline([("prep", prep), ("clf", LogisticRegression())]).fit(frame, target)


def column_feed(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    return {
        "city": frame[["city"]].to_numpy(object),
        "age": frame[["age"]].to_numpy(np.float32),
        "income": frame[["income"]].to_numpy(np.float32),
        "rooms": frame[["rooms"]].to_numpy(np.int64),
    }


def table_benchmark(settings: Any) -> None:
    train = customers(2000)
    model = mixed_pipeline(train)
    start = time.perf_counter()
    packaged = package(model, train.head(64), name="mixed", reference=train, settings=settings)
    took = time.perf_counter() - start
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(packaged.path, options, providers=["CPUExecutionProvider"])
    diff = packaged.parity["max_abs_diff"]
    print(
        f"\nmixed-type pipeline (one-hot city, imputed+scaled age/income/rooms, logistic "
        f"regression): package() {took:.1f} s, parity max abs diff {diff:.2g}"
    )
    print("  onnxruntime is fed one [n, 1] array per column; making them from a DataFrame is")
    print("  timed apart (a server gets them from the request, not from a DataFrame)")
    for size, repeats in REPEATS.items():
        frame = customers(size, seed=1)
        feed = column_feed(frame)
        t_sk = latency(lambda f: model.predict_proba(f), frame, repeats)
        t_onnx = latency(lambda f: session.run(None, f), feed, repeats)
        t_feed = latency(column_feed, frame, repeats)
        print(
            f"  batch {size:>3}: anchor scikit-learn predict_proba {t_sk:9.1f} us   "
            f"onnxruntime {t_onnx:9.1f} us   RATIO scikit-learn / onnxruntime "
            f"{t_sk / t_onnx:.2f}x   (DataFrame -> arrays {t_feed:.1f} us)"
        )


def latency(fn: Callable[[Any], Any], batch: Any, repeats: int) -> float:
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
    table_benchmark(settings)
    quantized_benchmark(settings)
    print(f"project: {root}")


if __name__ == "__main__":
    main()
