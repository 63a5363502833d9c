"""drift() against raw Evidently on generated data with known shifts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from jupyter_mlops.monitoring.drift import DriftInputError, drift


def frames(n: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)

    def make(shift: bool) -> pd.DataFrame:
        df = pd.DataFrame({f"x{i}": rng.normal(0, 1, n) for i in range(6)})
        df["count"] = rng.integers(0, 100, n)  # many integers: numeric
        df["level"] = rng.integers(0, 3, n)  # few integers: categorical, as Evidently sees it
        df["colour"] = rng.choice(
            ["red", "green", "blue"], n, p=[0.6, 0.3, 0.1] if shift else [0.3, 0.4, 0.3]
        )
        if shift:
            df["x2"] += 1.0
            df["count"] = df["count"] + 40
        return df

    return make(False), make(True)


@pytest.mark.parametrize("n", [200, 3000], ids=["small-data-tests", "large-data-tests"])
def test_same_verdicts_and_scores_as_evidentlys_report(n: int) -> None:
    from evidently import Report
    from evidently.presets import DataDriftPreset

    ref, cur = frames(n)
    ours = drift(ref, cur)
    snapshot = json.loads(
        Report([DataDriftPreset()]).run(current_data=cur, reference_data=ref).json()
    )
    theirs = {
        m["config"]["column"]: (m["value"], m["config"]["threshold"], m["config"]["method"])
        for m in snapshot["metrics"]
        if m["config"]["type"].endswith("ValueDrift")
    }
    assert set(theirs) == {c.column for c in ours.columns}
    for c in ours.columns:
        score, threshold, method = theirs[c.column]
        assert c.score == pytest.approx(score, rel=1e-9, abs=1e-12), c.column
        assert (c.threshold, c.method) == (threshold, method)
        # Evidently's verdict: a p-value under the threshold, or a distance at or above it
        p_value = "p_value" in method or method in (
            "K-S p_value",
            "chi-square p_value",
            "Z-test p_value",
        )
        assert c.drifted == ((score < threshold) if p_value else (score >= threshold)), c.column
    assert {"x2", "count", "colour"} <= set(ours.drifted_columns)
    counted = next(
        m for m in snapshot["metrics"] if m["config"]["type"].endswith("DriftedColumnsCount")
    )
    assert counted["value"]["count"] == len(ours.drifted_columns)
    assert ours.dataset_drift == (counted["value"]["share"] >= 0.5)


def test_summary_figure_and_inline_view() -> None:
    ref, cur = frames(1000)
    report = drift(ref, cur, columns=["x0", "x2", "colour"])
    table = report.summary()
    assert list(table.index) == ["x0", "x2", "colour"]
    assert bool(table.loc["x2", "drifted"]) and not bool(table.loc["x0", "drifted"])
    fig = report.figure()
    assert (
        len(fig.data) == 1 + 2 * 2
    )  # the score bars, then reference and current per drifted column
    # most drifted first, so the drifted columns lead the bars
    assert set(fig.data[0].x) == {"x0", "x2", "colour"} and fig.data[0].x[-1] == "x0"
    assert fig.layout.title.text.startswith("DRIFT: 2 of 3 columns drifted")
    assert report.figure(titled=False).layout.title.text is None
    html = report._repr_html_()
    assert len(html) < 5000 and "<b>drift</b>" in html
    assert report.verdict().startswith("DRIFT: 2 of 3 columns drifted")


def test_schema_differences_are_reported_not_fatal() -> None:
    ref, cur = frames(500)
    cur = cur.drop(columns=["x1"]).assign(extra=1.0, x3=cur["x3"].astype(str))
    report = drift(ref, cur)
    assert report.missing == ["x1"]
    assert report.extra == ["extra"]
    assert "x3" in report.retyped
    assert "missing in current: x1" in report.verdict()


def test_bad_inputs_have_clear_messages() -> None:
    ref, cur = frames(100)
    with pytest.raises(DriftInputError, match="the current data is empty: no rows to compare"):
        drift(ref, cur.iloc[:0])
    with pytest.raises(DriftInputError, match="the reference data is empty"):
        drift(ref.iloc[:0], cur)
    with pytest.raises(DriftInputError, match="columns not in the reference data: nope"):
        drift(ref, cur, columns=["nope"])
    with pytest.raises(DriftInputError, match="must be a table"):
        drift(np.zeros(5), cur)
    nan = cur.assign(x0=np.nan)
    report = drift(ref, nan)
    assert report.skipped["x0"] == "all values missing"
    single = drift(ref, cur.iloc[:1])
    assert single.current_rows == 1 and single.columns
    with pytest.raises(DriftInputError, match="no column could be compared"):
        drift(ref[["x0"]], pd.DataFrame({"other": [1.0, 2.0]}))


def test_save_html_writes_evidentlys_full_report(tmp_path: Path) -> None:
    ref, cur = frames(300)
    report = drift(ref, cur, columns=["x0", "x2"])
    path = report.save_html(tmp_path / "drift.html")
    assert path.stat().st_size > 100_000
