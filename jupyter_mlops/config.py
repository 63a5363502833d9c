"""Where the project is, where its store is, and what ``mlops.yaml`` says.

Kept free of heavy imports: it runs on the ``%load_ext`` path. ``yaml`` is imported only
when an ``mlops.yaml`` exists.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .exceptions import ConfigError, MlopsError

CONFIG_FILE = "mlops.yaml"
STATE_DIR = ".mlops"

#: Names that look like metrics: a metric word as a whole ``_``-separated part of the name,
#: so ``val_loss``, ``test_accuracy`` and ``best_f1`` match but ``lossy`` does not.
DEFAULT_METRIC_PATTERN = (
    r"(?:^|_)(?:loss|acc|accuracy|auc|roc_auc|f1|precision|recall|mse|rmse|mae|r2|score)(?:$|_)"
)

_TRACKING_KEYS = {
    "enabled",
    "metric_pattern",
    "metrics",
    "max_param_length",
    "source_tag_limit",
    "secret_patterns",
    "export_tracking_uri",
    "files",
}
_TOP_KEYS = {"tracking", "pipelines", "registry", "serving", "monitoring", "team", "models"}


@dataclass(frozen=True)
class TrackingSettings:
    """The ``tracking:`` section of ``mlops.yaml``."""

    enabled: bool = True
    metric_pattern: str = DEFAULT_METRIC_PATTERN
    #: Extra exact names always treated as metrics.
    metrics: tuple[str, ...] = ()
    #: Longer string values are not logged as params (a note says so).
    max_param_length: int = 500
    #: Cell sources longer than this go to an artifact instead of a tag.
    source_tag_limit: int = 5000
    #: Extra regular expressions for values that are secrets (never logged, masked in source).
    secret_patterns: tuple[str, ...] = ()
    #: ``%load_ext`` sets ``MLFLOW_TRACKING_URI`` in the kernel so the user's own ``mlflow``
    #: calls and ``!python train.py`` land in the project store too.
    export_tracking_uri: bool = True
    #: record the project files each cell opens (an audit hook; see ``tracking/files.py``)
    files: bool = True

    def metric_regex(self) -> re.Pattern[str]:
        return re.compile(self.metric_pattern, re.IGNORECASE)


@dataclass(frozen=True)
class Settings:
    """Resolved settings of one project."""

    project_dir: Path
    tracking_uri: str
    registry_uri: str
    artifact_root: Path
    tracking: TrackingSettings = field(default_factory=TrackingSettings)
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def state_dir(self) -> Path:
        return self.project_dir / STATE_DIR

    @property
    def journal_dir(self) -> Path:
        return self.state_dir / "journal"

    @property
    def is_embedded(self) -> bool:
        return self.tracking_uri.startswith("sqlite:")

    def relative(self, path: str | os.PathLike[str]) -> str:
        """``path`` relative to the project when inside it, else absolute."""
        p = Path(path).resolve()
        try:
            return p.relative_to(self.project_dir).as_posix()
        except ValueError:
            return p.as_posix()

    def resolve_inside(self, path: str | os.PathLike[str]) -> Path:
        """Resolve a user-given path; refuse one that leaves the project directory."""
        p = Path(path)
        full = (p if p.is_absolute() else self.project_dir / p).resolve()
        if full != self.project_dir and self.project_dir not in full.parents:
            raise MlopsError(f"{path}: outside the project directory {self.project_dir}")
        return full


def find_project_dir(start: str | os.PathLike[str] | None = None) -> Path:
    """Nearest parent holding ``mlops.yaml``, else the git root, else ``start`` itself."""
    here = Path(start or os.getcwd()).resolve()
    candidates = [here, *here.parents]
    for d in candidates:
        if (d / CONFIG_FILE).is_file():
            return d
    for d in candidates:
        if (d / ".git").exists():
            return d
    return here


def _load_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"not valid YAML: {err}", path=str(path)) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping at the top level", path=str(path))
    return data


def _tracking_settings(section: Any, path: Path) -> TrackingSettings:
    if section is None:
        return TrackingSettings()
    if not isinstance(section, dict):
        raise ConfigError("expected a mapping", path=str(path), field="tracking")
    unknown = sorted(set(section) - _TRACKING_KEYS)
    if unknown:
        raise ConfigError(
            f"unknown key {unknown[0]!r} (known: {', '.join(sorted(_TRACKING_KEYS))})",
            path=str(path),
            field="tracking",
        )
    kwargs: dict[str, Any] = {}
    for key in ("enabled", "export_tracking_uri", "files"):
        if key in section:
            if not isinstance(section[key], bool):
                raise ConfigError("must be true or false", path=str(path), field=f"tracking.{key}")
            kwargs[key] = section[key]
    if "metric_pattern" in section:
        pattern = section["metric_pattern"]
        try:
            re.compile(str(pattern))
        except re.error as err:
            raise ConfigError(
                f"not a regular expression: {err}", path=str(path), field="tracking.metric_pattern"
            ) from None
        kwargs["metric_pattern"] = str(pattern)
    if "metrics" in section:
        names = section["metrics"]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ConfigError("must be a list of names", path=str(path), field="tracking.metrics")
        kwargs["metrics"] = tuple(names)
    if "secret_patterns" in section:
        kwargs["secret_patterns"] = _secret_patterns(section["secret_patterns"], path)
    for key in ("max_param_length", "source_tag_limit"):
        if key in section:
            value = section[key]
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(
                    "must be a positive integer", path=str(path), field=f"tracking.{key}"
                )
            kwargs[key] = value
    return TrackingSettings(**kwargs)


def _secret_patterns(patterns: Any, path: Path) -> tuple[str, ...]:
    field = "tracking.secret_patterns"
    if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
        raise ConfigError("must be a list of regular expressions", path=str(path), field=field)
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as err:
            raise ConfigError(
                f"{pattern!r} is not a regular expression: {err}", path=str(path), field=field
            ) from None
    return tuple(patterns)


def _sqlite_uri(path: Path) -> str:
    return f"sqlite:///{path.as_posix()}"


def load_settings(start: str | os.PathLike[str] | None = None) -> Settings:
    """Settings for the project around ``start`` (default: the working directory).

    >>> load_settings().tracking_uri  # doctest: +SKIP
    'sqlite:////home/me/project/.mlops/mlflow.db'
    """
    project = find_project_dir(start)
    config_path = project / CONFIG_FILE
    raw = _load_yaml(config_path) if config_path.is_file() else {}
    unknown = sorted(set(raw) - _TOP_KEYS)
    if unknown:
        raise ConfigError(
            f"unknown section {unknown[0]!r} (known: {', '.join(sorted(_TOP_KEYS))})",
            path=str(config_path),
        )
    tracking = _tracking_settings(raw.get("tracking"), config_path)
    state = project / STATE_DIR
    tracking_uri = os.environ.get("MLFLOW_TRACKING_URI") or _sqlite_uri(state / "mlflow.db")
    registry_uri = os.environ.get("MLFLOW_REGISTRY_URI") or tracking_uri
    artifact_root = Path(os.environ.get("JUPYTER_MLOPS_ARTIFACT_ROOT") or state / "artifacts")
    return Settings(
        project_dir=project,
        tracking_uri=tracking_uri,
        registry_uri=registry_uri,
        artifact_root=artifact_root.resolve(),
        tracking=tracking,
        raw=raw,
    )


# -- serving: capture ---------------------------------------------------------------------------
_CAPTURE_KEYS = {
    "enabled", "max_bytes", "max_age", "sample_rate", "segment_bytes", "segment_age",
    "queue_bytes",
}  # fmt: skip
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b?|b)?\s*$", re.IGNORECASE)
_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MIB = 1024 * 1024


@dataclass(frozen=True)
class CaptureSettings:
    """The ``serving: capture:`` section of ``mlops.yaml``: how much traffic a deployment keeps."""

    enabled: bool = True
    #: Retention cap per deployment: the oldest segments go once the capture passes it.
    max_bytes: int = 256 * MIB
    #: Segments older than this (seconds) go too; None keeps them until the byte cap.
    max_age: float | None = None
    #: Share of requests captured (1 = all); the rest are counted as dropped by sampling.
    sample_rate: float = 1.0
    #: A segment file is closed past this size or age, and a new one started.
    segment_bytes: int = 16 * MIB
    segment_age: float = 3600.0
    #: Requests waiting for the writer in memory, in bytes of tensors; beyond it they are dropped.
    queue_bytes: int = 64 * MIB

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in sorted(_CAPTURE_KEYS)}


@dataclass(frozen=True)
class ServingSettings:
    """The ``serving:`` section of ``mlops.yaml``."""

    capture: CaptureSettings = field(default_factory=CaptureSettings)


def _size(value: Any, path: str, name: str) -> int:
    found = _SIZE.match(value) if isinstance(value, str) else None
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if found and float(found.group(1)) > 0:
        unit = (found.group(2) or "b").lower()
        # MB is 10**6 bytes, MiB 2**20
        factor = (1024 if "i" in unit else 1000) ** "bkmgt".index(unit[0])
        return int(float(found.group(1)) * factor)
    raise ConfigError(
        f'must be a size above zero in bytes, like 268435456 or "256MB", got {value!r}',
        path=path,
        field=f"serving.capture.{name}",
    )


def _age(value: Any, path: str, name: str) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    found = _AGE.match(value) if isinstance(value, str) else None
    if found and float(found.group(1)) > 0:
        return float(found.group(1)) * _AGE_UNITS[found.group(2)]
    raise ConfigError(
        f'must be a duration above zero, in seconds or like "30m", "12h", "7d", got {value!r}',
        path=path,
        field=f"serving.capture.{name}",
    )


def capture_settings(section: Any, path: str) -> CaptureSettings:
    """Parse a ``capture:`` mapping (``mlops.yaml`` or a deployment's own copy)."""
    if section is None:
        return CaptureSettings()
    if not isinstance(section, dict):
        raise ConfigError("expected a mapping", path=path, field="serving.capture")
    unknown = sorted(set(section) - _CAPTURE_KEYS)
    if unknown:
        raise ConfigError(
            f"unknown key {unknown[0]!r} (known: {', '.join(sorted(_CAPTURE_KEYS))})",
            path=path,
            field="serving.capture",
        )
    kwargs: dict[str, Any] = {}
    if "enabled" in section:
        if not isinstance(section["enabled"], bool):
            raise ConfigError("must be true or false", path=path, field="serving.capture.enabled")
        kwargs["enabled"] = section["enabled"]
    for key in ("max_bytes", "segment_bytes", "queue_bytes"):
        if key in section:
            kwargs[key] = _size(section[key], path, key)
    for key in ("max_age", "segment_age"):
        if section.get(key) is not None:
            kwargs[key] = _age(section[key], path, key)
    if "sample_rate" in section:
        rate = section["sample_rate"]
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
            raise ConfigError(
                f"must be a number from 0 to 1 (the share of requests kept), got {rate!r}",
                path=path,
                field="serving.capture.sample_rate",
            )
        kwargs["sample_rate"] = float(rate)
    max_bytes = kwargs.get("max_bytes", CaptureSettings.max_bytes)
    if "segment_bytes" not in kwargs:
        # several segments fit under the cap, so evicting the oldest never empties it
        kwargs["segment_bytes"] = min(CaptureSettings.segment_bytes, max(max_bytes // 4, 1))
    elif kwargs["segment_bytes"] > max_bytes // 2:
        raise ConfigError(
            f"must be at most half of max_bytes ({max_bytes // 2} bytes), "
            f"got {kwargs['segment_bytes']}",
            path=path,
            field="serving.capture.segment_bytes",
        )
    return CaptureSettings(**kwargs)


def serving_settings(settings: Settings) -> ServingSettings:
    """The ``serving:`` section of the project's ``mlops.yaml``, checked.

    >>> serving_settings(load_settings()).capture.max_bytes  # doctest: +SKIP
    268435456
    """
    path = str(settings.project_dir / CONFIG_FILE)
    section = settings.raw.get("serving")
    if section is None:
        return ServingSettings()
    if not isinstance(section, dict):
        raise ConfigError("expected a mapping", path=path, field="serving")
    unknown = sorted(set(section) - {"capture"})
    if unknown:
        raise ConfigError(
            f"unknown key {unknown[0]!r} (known: capture)", path=path, field="serving"
        )
    return ServingSettings(capture=capture_settings(section.get("capture"), path))


# -- models: per-model settings -------------------------------------------------------------
_MODEL_KEYS = {"slices", "context"}
#: columns every captured row already has: a context column cannot take their names
CAPTURE_COLUMNS = ("time", "version", "protocol", "latency_ms", "request_id", "label")


@dataclass(frozen=True)
class ModelSettings:
    """``models: NAME:`` in ``mlops.yaml``: what the project says about one model.

    ``slices`` are columns of the evaluation data (not fed to the model) whose groups get
    their own metrics and the fairness disparities::

        models:
          churn:
            slices: [region, age_band]
            context: [region]

    ``context`` are columns a request may carry beside the model's inputs: the server
    captures them with the request (null when a request leaves one out) and never feeds
    them to the model; ``inference_log()`` returns them as columns.
    """

    slices: tuple[str, ...] = ()
    context: tuple[str, ...] = ()


def model_settings(settings: Settings, name: str | None) -> ModelSettings:
    """The ``models.<name>`` section of ``mlops.yaml``, checked (empty when absent)."""
    path = str(settings.project_dir / CONFIG_FILE)
    section = settings.raw.get("models")
    if section is None:
        return ModelSettings()
    if not isinstance(section, dict):
        raise ConfigError("expected a mapping of model names", path=path, field="models")
    entry = section.get(name) if name else None
    if entry is None:
        return ModelSettings()
    where = f"models.{name}"
    if not isinstance(entry, dict):
        raise ConfigError("expected a mapping", path=path, field=where)
    unknown = sorted(set(entry) - _MODEL_KEYS)
    if unknown:
        raise ConfigError(
            f"unknown key {unknown[0]!r} (known: {', '.join(sorted(_MODEL_KEYS))})",
            path=path,
            field=where,
        )
    slices = entry.get("slices") or []
    if isinstance(slices, str):
        slices = [slices]
    if not isinstance(slices, list) or not all(isinstance(c, str) and c for c in slices):
        raise ConfigError("must be a list of column names", path=path, field=f"{where}.slices")
    return ModelSettings(slices=tuple(slices), context=_context(entry.get("context"), path, where))


def _context(value: Any, path: str, where: str) -> tuple[str, ...]:
    names = [value] if isinstance(value, str) else value or []
    field = f"{where}.context"
    if not isinstance(names, list) or not all(isinstance(c, str) and c for c in names):
        raise ConfigError("must be a list of column names", path=path, field=field)
    twice = sorted({c for c in names if names.count(c) > 1})
    if twice:
        raise ConfigError(f"column {twice[0]!r} is named twice", path=path, field=field)
    reserved = [c for c in names if c in CAPTURE_COLUMNS or c.startswith(("in.", "out."))]
    if reserved:
        raise ConfigError(
            f"{reserved[0]!r} cannot be a context column: every captured row has a column "
            f"of that name (taken: {', '.join(CAPTURE_COLUMNS)}, and in.* / out.*)",
            path=path,
            field=field,
        )
    return tuple(names)
