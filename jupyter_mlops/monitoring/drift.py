"""``drift(reference, current)``: Evidently's per-column stat tests, without its report.

Evidently's ``DataDriftPreset`` picks a test per column (Wasserstein distance for large
numeric columns, Jensen-Shannon for categorical ones, K-S / chi-square / Z for small data)
and compares its score with a threshold. This module asks Evidently for the very same
test, column type and threshold, and runs only the test: the same verdicts without the
charts and widgets the full report builds. The full report is still one call away
(``DriftReport.save_html``) for the record.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..exceptions import MlopsError

#: Evidently's default: the dataset drifts when at least this share of columns drift
DRIFT_SHARE = 0.5


class DriftInputError(MlopsError):
    """The data given to ``drift()`` cannot be compared."""


@dataclass
class ColumnDrift:
    column: str
    column_type: str
    method: str
    score: float
    threshold: float
    drifted: bool


@dataclass
class DriftReport:
    """Per-column verdicts, the dataset verdict, and what could not be compared."""

    columns: list[ColumnDrift]
    drift_share: float
    dataset_drift: bool
    reference_rows: int
    current_rows: int
    #: schema differences: missing / extra / retyped columns, and columns left out (why)
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    retyped: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    _frames: tuple[Any, Any] | None = field(default=None, repr=False)

    @property
    def drifted_columns(self) -> list[str]:
        return [c.column for c in self.columns if c.drifted]

    @property
    def share_drifted(self) -> float:
        return len(self.drifted_columns) / len(self.columns) if self.columns else 0.0

    def summary(self) -> Any:
        """One row per column: method, score, threshold, drifted."""
        import pandas as pd

        return pd.DataFrame([c.__dict__ for c in self.columns]).set_index("column")

    def to_dict(self) -> dict[str, Any]:
        return {
            "columns": [c.__dict__ for c in self.columns],
            "drift_share": self.drift_share,
            "dataset_drift": self.dataset_drift,
            "share_drifted": self.share_drifted,
            "drifted_columns": self.drifted_columns,
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "missing": self.missing,
            "extra": self.extra,
            "retyped": self.retyped,
            "skipped": self.skipped,
        }

    def verdict(self) -> str:
        n = len(self.drifted_columns)
        word = "DRIFT" if self.dataset_drift else "no dataset drift"
        text = f"{word}: {n} of {len(self.columns)} columns drifted ({self.share_drifted:.0%})"
        if self.drifted_columns:
            text += f": {', '.join(self.drifted_columns[:10])}"
        notes = []
        if self.missing:
            notes.append(f"missing in current: {', '.join(self.missing)}")
        if self.extra:
            notes.append(f"extra in current: {', '.join(self.extra)}")
        if self.retyped:
            notes.append("retyped: " + ", ".join(f"{k} ({v})" for k, v in self.retyped.items()))
        if self.skipped:
            notes.append("skipped: " + ", ".join(f"{k} ({v})" for k, v in self.skipped.items()))
        return text + ("\n" + "\n".join(notes) if notes else "")

    def figure(self, max_columns: int = 4, *, titled: bool = True) -> Any:
        """Scores against thresholds (most drifted first), and reference vs current for the
        ``max_columns`` most drifted columns; the verdict as title unless ``titled=False``."""
        from .drift_figure import drift_figure

        return drift_figure(
            self.to_dict()["columns"],
            self._frames,
            title=self.verdict().splitlines()[0] if titled else None,
            top=max_columns,
        )

    def save_html(self, path: str | Path) -> Path:
        """Evidently's full data drift report (several MB) for the record."""
        if self._frames is None:
            raise DriftInputError("this report no longer holds its data")
        from evidently import DataDefinition, Dataset, Report
        from evidently.presets import DataDriftPreset

        ref, cur = self._frames
        columns = [c.column for c in self.columns]
        # the column types our tests used, so the report runs the same test per column
        definition = DataDefinition(
            numerical_columns=[c.column for c in self.columns if c.column_type == "num"],
            categorical_columns=[c.column for c in self.columns if c.column_type == "cat"],
        )
        snapshot = Report([DataDriftPreset(drift_share=self.drift_share)]).run(
            current_data=Dataset.from_pandas(cur[columns], data_definition=definition),
            reference_data=Dataset.from_pandas(ref[columns], data_definition=definition),
        )
        target = Path(path)
        snapshot.save_html(str(target))
        return target

    def _repr_html_(self) -> str:
        """A compact table inline, never the multi-megabyte report."""
        from html import escape

        head = escape(self.verdict()).replace("\n", "<br>")
        rows = "".join(
            f"<tr><td>{escape(c.column)}</td><td>{c.method}</td><td>{c.score:.4g}</td>"
            f"<td>{c.threshold:g}</td><td>{'<b>drift</b>' if c.drifted else ''}</td></tr>"
            for c in self.columns
        )
        return (
            f"<div><p>{head}</p><table><tr><th>column</th><th>method</th><th>score</th>"
            f"<th>threshold</th><th></th></tr>{rows}</table></div>"
        )


def _strength(c: ColumnDrift) -> float:
    """Above 1 when the column drifts. A distance drifts above its threshold (score over
    threshold); a p-value drifts below it, so it is compared on a log scale."""
    if "p_value" in c.method:
        if not 0 < c.threshold < 1 or not math.isfinite(c.score):
            return 0.0
        return math.log(max(c.score, 1e-300)) / math.log(c.threshold)
    return c.score / c.threshold if c.threshold else 0.0


def _is_categorical(series: Any) -> bool:
    """Strings, categories and booleans: a categorical test, however many values they take
    (Evidently would call a string column with many distinct values text, and skip it)."""
    import pandas as pd

    dtype = series.dtype
    return (
        isinstance(dtype, pd.CategoricalDtype)
        or pd.api.types.is_bool_dtype(dtype)
        or pd.api.types.is_string_dtype(dtype)
    )


def _column_type(series: Any) -> Any:
    from evidently.core.datasets import ColumnType, infer_column_type

    return ColumnType.Categorical if _is_categorical(series) else infer_column_type(series)


def _as_frame(data: Any, role: str) -> Any:
    import numpy as np
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data
    array = np.asarray(data)
    if array.ndim != 2:
        raise DriftInputError(f"{role} must be a table (a DataFrame or a 2-D array)")
    return pd.DataFrame(array, columns=[f"f{i}" for i in range(array.shape[1])])


def drift(
    reference: Any,
    current: Any,
    columns: list[str] | None = None,
    *,
    drift_share: float = DRIFT_SHARE,
) -> DriftReport:
    """Compare ``current`` with ``reference`` column by column with Evidently's tests.

    >>> report = jupyter_mlops.drift(train_df, recent_df)  # doctest: +SKIP
    >>> report.drifted_columns  # doctest: +SKIP
    ['pixel_3_4']
    """
    from evidently.core.datasets import ColumnType
    from evidently.legacy.calculations.stattests.registry import get_stattest

    ref = _as_frame(reference, "reference")
    cur = _as_frame(current, "current")
    if len(ref) == 0:
        raise DriftInputError("the reference data is empty")
    if len(cur) == 0:
        raise DriftInputError(
            "the current data is empty: no rows to compare (is the window too short?)"
        )
    wanted = list(columns) if columns is not None else list(ref.columns)
    unknown = [c for c in wanted if c not in ref.columns]
    if unknown:
        raise DriftInputError(f"columns not in the reference data: {', '.join(map(str, unknown))}")
    report = DriftReport([], drift_share, False, len(ref), len(cur))
    report.missing = [str(c) for c in wanted if c not in cur.columns]
    if columns is None:
        report.extra = [str(c) for c in cur.columns if c not in ref.columns]
    results = []
    for column in wanted:
        if column not in cur.columns:
            continue
        r, c = ref[column], cur[column]
        if r.notna().sum() == 0 or c.notna().sum() == 0:
            report.skipped[str(column)] = "all values missing"
            continue
        kind = _column_type(c)
        ref_kind = _column_type(r)
        if kind != ref_kind:
            report.retyped[str(column)] = f"{ref_kind.value} -> {kind.value}"
        if kind not in (ColumnType.Numerical, ColumnType.Categorical):
            report.skipped[str(column)] = f"{kind.value} columns are not tested"
            continue
        feature_type = "num" if kind == ColumnType.Numerical else "cat"
        numeric = (r.dtype.kind in "fiu", c.dtype.kind in "fiu")
        # numbers against their text share no value a categorical test could compare
        if numeric[0] != numeric[1] or (kind == ColumnType.Numerical and not numeric[1]):
            report.skipped[str(column)] = "numeric in one dataset, not in the other"
            continue
        try:
            test = get_stattest(r.dropna(), c.dropna(), feature_type, None)
            result = test(r.dropna(), c.dropna(), feature_type, None)
        except Exception as err:  # a column Evidently cannot test: say so, go on
            report.skipped[str(column)] = f"{type(err).__name__}: {err}"
            continue
        score = float(result.drift_score)
        results.append(
            ColumnDrift(
                column=str(column),
                column_type=feature_type,
                method=test.display_name,
                score=score if math.isfinite(score) else float("nan"),
                threshold=float(result.actual_threshold),
                drifted=bool(result.drifted),
            )
        )
    if not results:
        raise DriftInputError(
            "no column could be compared: "
            + (
                report.verdict().split("\n", 1)[1]
                if "\n" in report.verdict()
                else "no shared columns"
            )
        )
    report.columns = results
    report.dataset_drift = report.share_drifted >= drift_share
    report._frames = (ref, cur)
    return report
