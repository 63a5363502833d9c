"""``log_labels()``: ground truth for a deployment's predictions, from a notebook or a file;
``labelled_window()``: captured traffic joined with its labels, for quality monitoring.

Storage and its rules (last label wins, counted as a correction; labels kept before their
request is captured) are in :mod:`jupyter_mlops.serving.label_store`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..config import Settings, load_settings
from ..exceptions import MlopsError, NotFoundError
from ..serving.label_store import LabelResult, has_labels, read_labels, store_labels

ID_COLUMN = "request_id"
LABEL_COLUMN = "label"


class LabelsInputError(MlopsError):
    """Labels given in a shape that cannot be read (a file's format, missing columns)."""


def labels_dir(settings: Settings, deployment_id: str) -> Path:
    """Where a deployment's labels live (beside its capture); NotFoundError if no such
    deployment was ever made in this project."""
    root = settings.state_dir / "deployments"
    if "/" in deployment_id or deployment_id.startswith(".") or not deployment_id:
        raise NotFoundError(f"no deployment {deployment_id!r}")
    if not (root / deployment_id / "state.json").is_file():
        known = sorted(p.name for p in root.iterdir() if (p / "state.json").is_file()) if (
            root.is_dir()
        ) else []  # fmt: skip
        raise NotFoundError(
            f"no deployment {deployment_id!r} (deployments: {', '.join(known) or 'none'})"
        )
    return settings.state_dir / "inference" / deployment_id


def log_labels(
    deployment: str,
    ids: Sequence[Any] | Any,
    labels: Sequence[Any] | None = None,
    *,
    settings: Settings | None = None,
) -> LabelResult:
    """Record the true labels of predictions a deployment made, by request id (the
    ``x-request-id`` its server answered; ``<id>-<row>`` for a row of a batch).

    ``ids`` with ``labels`` of the same length, or a DataFrame with columns ``request_id``
    and ``label``. Bad pairs are counted in the result, not raised.

    >>> jupyter_mlops.log_labels("prod", ["a1b2", "c3d4"], [3, 7]).summary()  # doctest: +SKIP
    'prod: 2 of 2 labels stored'
    """
    settings = settings or load_settings()
    directory = labels_dir(settings, deployment)
    if labels is None:
        frame: Any = ids
        if not hasattr(frame, "columns"):
            raise LabelsInputError(
                "log_labels(deployment, ids, labels): give labels, or a DataFrame with "
                f"columns {ID_COLUMN!r} and {LABEL_COLUMN!r}"
            )
        _require_columns(list(frame.columns), "the DataFrame")
        ids, labels = frame[ID_COLUMN].tolist(), frame[LABEL_COLUMN].tolist()
    ids, labels = list(ids), list(labels)
    if len(ids) != len(labels):
        raise LabelsInputError(f"{len(ids)} request ids but {len(labels)} labels")
    return store_labels(directory, deployment, zip(ids, labels, strict=True))


def _require_columns(columns: list[Any], what: str) -> None:
    missing = [c for c in (ID_COLUMN, LABEL_COLUMN) if c not in columns]
    if missing:
        raise LabelsInputError(
            f"{what} has no column {missing[0]!r} (it has {', '.join(map(str, columns)) or 'none'}"
            f"); labels need columns {ID_COLUMN!r} and {LABEL_COLUMN!r}"
        )


def read_label_file(path: str | Path) -> Any:
    """A CSV or Parquet file of labels as a DataFrame, its ids read as text."""
    import pandas as pd

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet", ".pq"):
        raise LabelsInputError(f"{path}: labels are read from a .csv or .parquet file")
    if not path.is_file():
        raise NotFoundError(f"{path}: no such file")
    try:
        if suffix == ".csv":
            frame = pd.read_csv(path, dtype={ID_COLUMN: str})
        else:
            frame = pd.read_parquet(path)
    except (ValueError, OSError) as err:
        raise LabelsInputError(f"{path}: cannot be read as {suffix[1:]}: {err}") from None
    _require_columns(list(frame.columns), str(path))
    return frame


def log_labels_file(
    deployment: str, path: str | Path, *, settings: Settings | None = None
) -> LabelResult:
    """``log_labels`` from a CSV or Parquet file with columns ``request_id`` and ``label``."""
    settings = settings or load_settings()
    labels_dir(settings, deployment)  # an unknown deployment before a bad file
    return log_labels(deployment, read_label_file(path), settings=settings)


def labelled_window(current: Any, settings: Settings, deployment: str) -> Any:
    """The rows of ``current`` (an ``inference_log`` frame) that have a label, with it in a
    ``label`` column; empty when none do."""
    directory = labels_dir(settings, deployment)
    if not has_labels(directory) or current.empty:
        return current.iloc[0:0].assign(label=None)
    labels = read_labels(directory)
    joined = current.merge(labels, on=ID_COLUMN, how="inner")
    joined.attrs = dict(current.attrs)
    return joined


def save_window(settings: Settings, deployment: str, labelled: Any) -> Path:
    """The labelled window as a private Parquet file beside the deployment's labels."""
    import time

    from ..serving.config_file import open_private, private_dir

    directory = private_dir(labels_dir(settings, deployment) / "windows")
    path = directory / f"labelled-{time.strftime('%Y%m%dT%H%M%S')}-{len(labelled)}.parquet"
    frame = labelled.copy()
    frame.attrs = {}
    with open_private(path, "wb") as fh:
        frame.to_parquet(fh, index=False)
    return path


def log_window_input(settings: Settings, run_id: str, path: Path, labelled: Any) -> None:
    """The labelled window as an input dataset of ``run_id`` (MLflow's lineage, digest and
    all), with its labels as the dataset's targets."""
    from mlflow.data.pandas_dataset import from_pandas
    from mlflow.entities import DatasetInput, InputTag

    from .. import store

    frame = labelled.copy()
    frame.attrs = {}
    with warnings.catch_warnings():
        # MLflow's hints on a local path's source kind and on integer columns: not the user's
        warnings.simplefilter("ignore", UserWarning)
        dataset = from_pandas(frame, source=str(path), name="labelled_window", targets=LABEL_COLUMN)
    entity = DatasetInput(
        dataset._to_mlflow_entity(), tags=[InputTag("mlflow.data.context", "retrain")]
    )
    store.client(settings).log_inputs(run_id, datasets=[entity])
