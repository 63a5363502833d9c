"""Cell runs and pipeline runs side by side: one list to filter, a comparison to chart."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .. import store
from ..config import Settings
from ..exceptions import UsageError
from .queries import cell_runs

KINDS = ("cell", "pipeline")


@dataclass
class RunRow:
    """A cell run or a pipeline run, as the run lists show it."""

    run_id: str
    kind: str
    label: str
    status: str
    start_time: int
    duration_s: float | None
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def matches(self, text: str) -> bool:
        """Case-insensitive match on the label, run id, status and params."""
        needle = text.strip().lower()
        if not needle:
            return True
        haystack = " ".join(
            [self.label, self.run_id, self.status, self.kind]
            + [f"{k}={v}" for k, v in self.params.items()]
            + list(self.metrics)
        ).lower()
        return all(word in haystack for word in needle.split())


@dataclass
class RunComparison:
    """Params side by side (``None`` where a run lacks one) and each run's latest metrics."""

    runs: list[RunRow]
    params: dict[str, list[str | None]]
    metrics: dict[str, list[float | None]]

    @property
    def differing_params(self) -> list[str]:
        return [k for k, values in self.params.items() if len(set(values)) > 1]

    def to_dict(self) -> dict[str, Any]:
        return {
            "runs": [r.to_dict() for r in self.runs],
            "params": self.params,
            "metrics": self.metrics,
            "differing_params": self.differing_params,
        }

    def figure(self, max_metrics: int = 9) -> Any:
        """One small bar chart per metric, a bar per run (metrics rarely share a scale)."""
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots

        names = sorted(self.metrics)[:max_metrics]
        cols = min(3, max(1, len(names)))
        rows = max(1, -(-len(names) // cols))
        fig = make_subplots(rows=rows, cols=cols, subplot_titles=names or ["no metrics"])
        palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]
        for i, run in enumerate(self.runs):
            label = f"{run.label[:24]} ({run.run_id[:6]})"
            for j, name in enumerate(names):
                value = self.metrics[name][i]
                fig.add_trace(
                    go.Bar(
                        x=[label],
                        y=[value],
                        name=label,
                        legendgroup=run.run_id,
                        showlegend=j == 0,
                        marker_color=palette[i % len(palette)],
                    ),
                    row=j // cols + 1,
                    col=j % cols + 1,
                )
        fig.update_xaxes(showticklabels=False)
        fig.update_layout(
            height=230 * rows + 60, margin={"t": 40, "b": 20, "l": 40, "r": 10}, bargap=0.3
        )
        return fig


def list_runs(
    settings: Settings,
    *,
    experiment: str | None = None,
    kinds: tuple[str, ...] = KINDS,
    status: str | None = None,
    text: str = "",
    limit: int = 50,
) -> list[RunRow]:
    """Newest first: cell runs (of one notebook's experiment, or all) and pipeline runs."""
    from ..pipelines.history import pipeline_runs

    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise UsageError(f"run kind {unknown[0]!r}: choose from {', '.join(KINDS)}")
    rows: list[RunRow] = []
    if "cell" in kinds:
        for c in cell_runs(settings, experiment=experiment, limit=limit):
            label = f"[{c.execution_count or '?'}] {c.source_preview}".strip()
            rows.append(
                RunRow(c.run_id, "cell", label, c.status, c.start_time, c.duration_s,
                       dict(c.params), dict(c.metrics))
            )  # fmt: skip
    if "pipeline" in kinds:
        for p in pipeline_runs(settings, limit=limit):
            params = {k: str(v) for k, v in p.params.items()}
            rows.append(
                RunRow(p.run_id, "pipeline", " ".join([p.name, *(f"{k}={v}" for k, v in
                       params.items())]), p.status, p.start_time,
                       p.duration_s, params, {})
            )  # fmt: skip
    if status:
        rows = [r for r in rows if r.status == status.upper()]
    rows = [r for r in rows if r.matches(text)]
    rows.sort(key=lambda r: r.start_time, reverse=True)
    return rows[:limit]


def compare_runs(settings: Settings, run_ids: list[str]) -> RunComparison:
    """Params and latest metrics of two or more runs, read from the store."""
    from mlflow.exceptions import MlflowException

    from ..exceptions import NotFoundError

    ids = list(dict.fromkeys(run_ids))
    if len(ids) < 2:
        raise UsageError("select two or more runs to compare")
    client = store.client(settings)
    runs = []
    for run_id in ids:
        try:
            runs.append(client.get_run(run_id))
        except MlflowException:
            raise NotFoundError(f"no run {run_id!r} in {settings.tracking_uri}") from None
    rows = []
    for run in runs:
        tags = run.data.tags
        kind = tags.get("mlops.kind", "run")
        label = tags.get("mlops.source_preview") or run.info.run_name or run.info.run_id
        end = run.info.end_time
        metrics = {k: v for k, v in run.data.metrics.items() if not k.startswith("mlops.")}
        rows.append(
            RunRow(run.info.run_id, kind, label, run.info.status, run.info.start_time,
                   (end - run.info.start_time) / 1000 if end else None,
                   dict(run.data.params), metrics)
        )  # fmt: skip
    param_names = sorted({k for r in rows for k in r.params})
    metric_names = sorted({k for r in rows for k in r.metrics})
    return RunComparison(
        rows,
        {k: [r.params.get(k) for r in rows] for k in param_names},
        {k: [r.metrics.get(k) for r in rows] for k in metric_names},
    )
