"""A notebook keeps its runs when it is renamed or moved.

A notebook's runs live in the experiment named by its path (see DESIGN.md). When
JupyterLab renames a notebook, or a folder holding notebooks, the sidebar asks the server
to rename the experiments to the new paths, and tells the notebook's kernel, whose writer
then records later cells under the new path. The experiment id never changes, so the runs
of before and after stay in one experiment, and both renames are idempotent.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .. import store
from ..config import Settings


@dataclass
class MoveResult:
    """Which experiments followed their notebooks, and which could not (and why)."""

    moved: list[dict[str, str]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def rename_experiment(client: Any, experiment_id: str, new_name: str) -> str | None:
    """Rename one experiment to ``new_name``; the reason when it cannot, else None."""
    current = client.get_experiment(experiment_id)
    if current.name == new_name:
        return None
    taken = client.get_experiment_by_name(new_name)
    if taken is not None:
        # MLflow names are unique, deleted experiments included: never merge two histories
        return f"an experiment named {new_name!r} already exists (id {taken.experiment_id})"
    client.rename_experiment(experiment_id, new_name)
    return None


def move_notebook(settings: Settings, old: str, new: str) -> MoveResult:
    """Rename the experiment of notebook ``old`` (or of every notebook under folder
    ``old``) after it moved to ``new``; both are experiment names (project-relative).

    >>> move_notebook(settings, "train.ipynb", "models/train-v2.ipynb")  # doctest: +SKIP
    MoveResult(moved=[{'from': 'train.ipynb', 'to': 'models/train-v2.ipynb'}], skipped=[])
    """
    from mlflow.entities import ViewType

    result = MoveResult()
    if old == new:
        return result
    client = store.client(settings)
    prefix = old.rstrip("/") + "/"
    pairs: list[tuple[Any, str]] = []
    token = None
    while True:
        page = client.search_experiments(
            view_type=ViewType.ACTIVE_ONLY, max_results=1000, page_token=token
        )
        for experiment in page:
            name = experiment.name
            if name == old and name.endswith(".ipynb"):
                pairs.append((experiment, new))
            elif name.startswith(prefix) and name.endswith(".ipynb"):
                pairs.append((experiment, new.rstrip("/") + "/" + name[len(prefix) :]))
        token = page.token
        if not token:
            break
    for experiment, target in pairs:
        reason = rename_experiment(client, experiment.experiment_id, target)
        entry = {"from": experiment.name, "to": target}
        if reason is None:
            result.moved.append(entry)
        else:
            result.skipped.append({**entry, "reason": reason})
    return result
