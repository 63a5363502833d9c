"""A pipeline run answered from the cache alone, without MLflow in this process.

When every step's key is in the local cache index, nothing needs to execute and nothing
needs to be read from the store: the outputs are in the index. The pipeline run and its
step runs are then recorded as journal records and handed to a writer process, so a fully
cached ``jupyter mlops run`` costs Python's start-up, hashing and a few small files.
"""

from __future__ import annotations

import time
from typing import Any

from ..config import Settings
from ..exceptions import MlopsError
from ..tracking.run_journal import RunJournal
from .cache import CacheEntry, CacheIndex
from .resolve import ResolvedStep, resolve_step
from .run_tags import (
    json_tag,
    output_metrics,
    param_values,
    pipeline_tags,
    reuse_tags,
    step_status_tags,
    step_tags,
)
from .runner import PipelineResult, StepResult
from .spec import PipelineSpec


def _hits(
    spec: PipelineSpec, params: dict[str, Any], settings: Settings
) -> tuple[dict[str, tuple[ResolvedStep, CacheEntry]], list[str]] | None:
    """Every step's cache hit in DAG order, or None at the first step that must run."""
    cache = CacheIndex(settings.state_dir / "cache")
    outputs: dict[str, dict[str, Any]] = {}
    hits: dict[str, tuple[ResolvedStep, CacheEntry]] = {}
    warnings: list[str] = []
    for name in spec.order:
        if not spec.steps[name].cache:
            return None
        resolved = resolve_step(spec, name, params, outputs, settings)
        entry = cache.get(resolved.key, settings.project_dir)
        if entry is None:
            return None
        if resolved.warning:
            warnings.append(resolved.warning)
        hits[name] = (resolved, entry)
        outputs[name] = entry.outputs
    return hits, warnings


def run_from_cache(
    spec: PipelineSpec, params: dict[str, Any], settings: Settings, tags: dict[str, str]
) -> PipelineResult | None:
    """The result when every step is a cache hit, its runs handed to a writer process;
    None when a step must run (or the journal cannot be written), for the runner to do."""
    started = time.perf_counter()
    start_ms = int(time.time() * 1000)
    found = _hits(spec, params, settings)
    if found is None:
        return None
    hits, warnings = found
    steps = {
        name: StepResult(
            name=name,
            status="CACHED",
            params=resolved.values,
            outputs=entry.outputs,
            cache_key=resolved.key,
            reused_run_id=entry.run_id,
        )
        for name, (resolved, entry) in hits.items()
    }
    result = PipelineResult(
        name=spec.name,
        run_id="",
        status="FINISHED",
        params=params,
        steps=steps,
        duration_s=0.0,
        executed_dir="",
        warnings=warnings,
    )
    journal = RunJournal(settings)
    end_ms = int(time.time() * 1000)
    result.record_id = journal.add(
        experiment=spec.name,
        run_name=spec.name,
        tags={
            **pipeline_tags(spec, params, settings, tags),
            **step_status_tags(spec, dict.fromkeys(steps, "CACHED"), {}),
        },
        params=param_values(params),
        dicts={"pipeline_result.json": result.to_dict()},
        start=start_ms,
        end=end_ms,
    )
    for name, (resolved, entry) in hits.items():
        journal.add(
            experiment=spec.name,
            run_name=name,
            tags={
                **step_tags(spec, name, resolved.key, settings),
                **reuse_tags(entry.run_id),
                "mlops.outputs": json_tag(entry.outputs),
            },
            params=param_values(resolved.values),
            metrics=output_metrics(entry.outputs),
            parent=result.record_id,
            start=start_ms,
            end=end_ms,
        )
    try:
        if journal.hand_over() is None:
            result.warnings.append(
                "the tracking writer did not start: the run is recorded by the next one, "
                "or now with `jupyter mlops flush`"
            )
    except MlopsError:
        return None  # the runner writes to the store itself, or says why it cannot
    result.duration_s = time.perf_counter() - started
    return result
