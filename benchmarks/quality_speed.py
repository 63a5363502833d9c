"""Labelled monitoring quality against Evidently's own classification report on the same data.

50 000 captured predictions of a digits classifier (scikit-learn's bundled digits, resampled
with pixel noise; ten class scores per row, as a tensor model's capture holds them), all
labelled. Ours: the labels read from the project's label store, joined to the capture by
request id, and quality() (accuracy, F1, precision, recall, per-class precision and recall,
confusion matrix). The anchor: Report([ClassificationPreset()]) on the already joined
target and prediction columns. Both timed in the same run; every number compared.
Goal: >= 2x faster with the same numbers.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROWS, GOAL = 50_000, 2.0


def traffic() -> tuple[pd.DataFrame, np.ndarray]:
    """An ``inference_log``-shaped frame (request_id, out0..out9) and the true digits."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    x, y = load_digits(return_X_y=True)
    model = LogisticRegression(max_iter=2000).fit(x[:900], y[:900])
    rng = np.random.default_rng(0)
    pick = rng.integers(900, len(x), ROWS)
    noisy = x[pick] + rng.normal(0, 4, (ROWS, x.shape[1]))
    scores = model.predict_proba(noisy).astype(np.float32)
    frame = pd.DataFrame(scores, columns=[f"out{i}" for i in range(scores.shape[1])])
    frame.insert(0, "version", "1")
    frame["request_id"] = [f"{n // 8:08x}-{n % 8}" for n in range(ROWS)]  # batches of 8
    return frame, y[pick]


def main() -> None:
    from evidently import DataDefinition, Dataset, MulticlassClassification, Report
    from evidently.presets import ClassificationPreset

    from jupyter_mlops.monitoring.quality import QualityReport, quality
    from jupyter_mlops.serving.label_store import read_labels, store_labels

    current, truth = traffic()
    outputs = [c for c in current.columns if c.startswith("out")]
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "inference" / "bench"
        start = time.perf_counter()
        stored = store_labels(directory, "bench", zip(current["request_id"], truth.tolist()))
        store_s = time.perf_counter() - start
        assert stored.stored == ROWS, stored.summary()

        def ours() -> QualityReport:
            labelled = current.merge(read_labels(directory), on="request_id", how="inner")
            return quality(labelled, outputs)

        ours()  # warm both paths' lazy imports
        frame = pd.DataFrame(
            {"target": truth, "prediction": current[outputs].to_numpy().argmax(axis=1)}
        )
        definition = DataDefinition(
            classification=[
                MulticlassClassification(target="target", prediction_labels="prediction")
            ]
        )
        dataset = Dataset.from_pandas(frame.head(1000), data_definition=definition)
        Report([ClassificationPreset()]).run(dataset, None)

        theirs_s, ours_s, quality_s = [], [], []
        for _ in range(3):
            start = time.perf_counter()
            dataset = Dataset.from_pandas(frame, data_definition=definition)
            snapshot = Report([ClassificationPreset()]).run(dataset, None)
            theirs_s.append(time.perf_counter() - start)
            start = time.perf_counter()
            report = ours()
            ours_s.append(time.perf_counter() - start)
            start = time.perf_counter()
            labelled = current.assign(label=truth)
            quality(labelled, outputs)
            quality_s.append(time.perf_counter() - start)

    theirs = {m["metric_name"].split("(")[0]: m["value"] for m in snapshot.dict()["metrics"]}
    names = {"accuracy": "Accuracy", "f1": "F1Score", "precision": "Precision", "recall": "Recall"}
    same = all(np.isclose(report.metrics[k], theirs[v]) for k, v in names.items())
    for cls, values in report.per_class.items():
        same = same and np.isclose(values["precision"], theirs["PrecisionByLabel"][int(cls)])
        same = same and np.isclose(values["recall"], theirs["RecallByLabel"][int(cls)])
    t, o, q = min(theirs_s), min(ours_s), min(quality_s)
    print(f"labelled quality of {ROWS} predictions, 10 classes (best of 3)")
    print(f"  anchor: Report([ClassificationPreset()]).run      {t:6.3f} s")
    print(f"  labels read + joined by request id + quality()   {o:6.3f} s")
    print(f"  quality() of an already joined window             {q:6.3f} s")
    print(f"RATIO Evidently report / labelled quality: {t / o:.1f}x  (goal >= {GOAL}x)")
    print(f"RATIO Evidently report / quality() alone:  {t / q:.1f}x")
    print(
        f"same accuracy, F1, precision, recall and per-class numbers: {same}; "
        f"accuracy {report.metrics['accuracy']:.4f}"
    )
    print(f"(storing the {ROWS} labels once: {store_s:.2f} s)")


if __name__ == "__main__":
    main()
