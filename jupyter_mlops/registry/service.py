"""register, promote through gates, roll back, list: the registry as every door sees it.

Aliases are MLflow registry aliases; gate results are model-version tags
(``mlops.gate.<alias>``); every alias move is a registered-model tag
``mlops.history.<n>`` holding who, when, from, to and why, so the history lives in the
registry itself and a team server shares it.
"""

from __future__ import annotations

import datetime
import getpass
import json
import os
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from .. import store
from ..config import CONFIG_FILE, Settings, load_settings
from ..exceptions import MlopsError, NotFoundError
from .gates import GateResult, GateSpec, evaluate, parse_gates

_HISTORY = "mlops.history."
_ALIAS = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,254}$")


class PromotionRefused(MlopsError):
    """A gate failed; ``failed`` lists each with its numbers."""

    status = 409

    def __init__(self, name: str, version: str, alias: str, failed: list[GateResult]):
        lines = [f"promotion of {name} v{version} to {alias!r} refused; failed gates:"]
        lines += [f"  - {g.gate}: {g.evidence}" for g in failed]
        lines.append("nothing was moved (force=True with a reason overrides)")
        super().__init__("\n".join(lines))
        self.failed = failed


#: the tag on a pipeline step's run that lists the promotions its notebook saw refused
STEP_REFUSALS_TAG = "mlops.gates_refused"


def _note_on_step_run(client: Any, message: str) -> None:
    """Inside a pipeline step, tag the step's run with a refusal, so the pipeline (and a CI
    build that runs it) knows a gate said no even when the notebook caught the error."""
    from mlflow.exceptions import MlflowException

    step_run = os.environ.get("JUPYTER_MLOPS_SESSION_RUN_ID")
    if not step_run:
        return
    try:
        earlier = client.get_run(step_run).data.tags.get(STEP_REFUSALS_TAG)
        text = f"{earlier}\n{message}" if earlier else message
        client.set_tag(step_run, STEP_REFUSALS_TAG, text[:5000])
    except MlflowException:
        pass  # a step run the store does not know: the refusal still raises


@dataclass
class RegisteredVersion:
    name: str
    version: str
    run_id: str | None
    source: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AliasMove:
    """One entry of the alias history."""

    alias: str
    from_version: str | None
    to_version: str | None
    who: str
    when: str
    reason: str
    kind: str
    gates: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PromotionResult:
    name: str
    version: str
    alias: str
    previous: str | None
    gates: list[GateResult]
    verdict: str

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "gates": [g.to_dict() for g in self.gates]}

    def summary(self) -> str:
        moved = f"from v{self.previous} " if self.previous else ""
        lines = [f"{self.name}@{self.alias} moved {moved}to v{self.version} ({self.verdict})"]
        lines += [f"  {'pass' if g.passed else 'FAIL'}  {g.gate}: {g.evidence}" for g in self.gates]
        return "\n".join(lines)


@dataclass
class VersionInfo:
    version: str
    run_id: str | None
    status: str
    created: int
    aliases: list[str]
    parity_passed: bool | None
    gates: dict[str, str] = field(default_factory=dict)
    #: the metrics of the run the version was packaged in (what a promotion is judged on)
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class ModelInfo:
    name: str
    aliases: dict[str, str]
    versions: list[VersionInfo]
    history: list[AliasMove]
    #: alias -> the version a rollback would move it to; None: nothing to roll back to
    rollback_to: dict[str, str | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _client(settings: Settings | None) -> tuple[Settings, Any]:
    settings = settings or load_settings()
    return settings, store.client(settings)


def require_model(client: Any, name: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_registered_model(name)
    except MlflowException:
        known = sorted(m.name for m in client.search_registered_models())
        raise NotFoundError(
            f"no registered model {name!r} (models: {', '.join(known) or 'none'})"
        ) from None


def require_version(client: Any, name: str, version: str | int) -> Any:
    from mlflow.exceptions import MlflowException

    require_model(client, name)
    try:
        return client.get_model_version(name, str(version))
    except MlflowException:
        versions = sorted(
            (int(v.version) for v in client.search_model_versions(f"name = '{name}'")),
        )
        raise NotFoundError(
            f"model {name!r} has no version {version} "
            f"(versions: {', '.join(map(str, versions)) or 'none'})"
        ) from None


def alias_holder(client: Any, name: str, alias: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def _run_metrics(client: Any, run_id: str | None) -> tuple[dict[str, float], dict[str, str]]:
    if not run_id:
        return {}, {}
    run = client.get_run(run_id)
    return dict(run.data.metrics), dict(run.data.tags)


def register(
    model_or_uri: Any, name: str | None = None, *, settings: Settings | None = None
) -> RegisteredVersion:
    """Register a packaged model (or a ``runs:/``/``models:/`` URI) as a new version.

    >>> register(packaged)  # doctest: +SKIP
    RegisteredVersion(name='digits', version='3', ...)
    """
    settings, client = _client(settings)
    uri = getattr(model_or_uri, "model_uri", model_or_uri)
    if not isinstance(uri, str) or not uri.startswith(("runs:/", "models:/")):
        raise MlopsError(
            f"register() takes a PackagedModel or a runs:/ or models:/ URI, got {model_or_uri!r}"
        )
    name = name or getattr(model_or_uri, "name", None)
    if not name:
        raise MlopsError("register() needs a name for a bare URI")
    import mlflow
    from mlflow.exceptions import MlflowException

    store.use_fluent(settings)
    try:
        version = mlflow.register_model(uri, name)
    except MlflowException as err:
        raise NotFoundError(f"cannot register {uri}: {err.message}") from None
    try:
        _, tags = _run_metrics(client, version.run_id)
        for key in ("mlops.parity_passed", "mlops.parity"):
            if key in tags:
                client.set_model_version_tag(name, version.version, key, tags[key])
    except Exception:
        # no half-registered version: a version without its evidence is removed again
        client.delete_model_version(name, version.version)
        raise
    return RegisteredVersion(name, str(version.version), version.run_id, uri)


def configured_gates(settings: Settings, alias: str) -> GateSpec:
    """The gates ``mlops.yaml`` sets for ``alias``."""
    section = settings.raw.get("registry") or {}
    where = f"{settings.project_dir / CONFIG_FILE}: registry.gates.{alias}"
    if not isinstance(section, dict):
        raise MlopsError(f"{settings.project_dir / CONFIG_FILE}: registry: expected a mapping")
    gates = section.get("gates") or {}
    if not isinstance(gates, dict):
        raise MlopsError(
            f"{settings.project_dir / CONFIG_FILE}: registry.gates: expected a mapping"
        )
    return parse_gates(gates.get(alias), where)


def history(name: str, *, settings: Settings | None = None) -> list[AliasMove]:
    """Every alias move of ``name``, oldest first."""
    settings, client = _client(settings)
    model = require_model(client, name)
    entries = sorted((k, v) for k, v in model.tags.items() if k.startswith(_HISTORY))
    return [AliasMove(**json.loads(v)) for _, v in entries]


def _append_history(client: Any, name: str, move: AliasMove) -> None:
    model = client.get_registered_model(name)
    seq = sum(1 for k in model.tags if k.startswith(_HISTORY)) + 1
    client.set_registered_model_tag(name, f"{_HISTORY}{seq:06d}", json.dumps(move.to_dict()))


def _who() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def promote(
    name: str,
    version: str | int,
    alias: str = "champion",
    reason: str = "",
    *,
    gates: dict[str, Any] | None = None,
    force: bool = False,
    settings: Settings | None = None,
) -> PromotionResult:
    """Move ``alias`` to ``version`` if its gates pass; raise ``PromotionRefused`` if not.

    Gates come from ``gates`` (same shape as in ``mlops.yaml``) or ``mlops.yaml``'s
    ``registry.gates.<alias>``. ``force=True`` needs a ``reason`` and is recorded as forced.

    >>> promote("digits", 3, "champion", reason="beats v2 on test_accuracy")  # doctest: +SKIP
    """
    settings, client = _client(settings)
    if not _ALIAS.match(alias) or alias == "latest" or re.fullmatch(r"v\d+", alias):
        raise MlopsError(f"alias {alias!r}: letters, digits, '_' and '-', not 'latest' or 'v<n>'")
    if force and not reason.strip():
        raise MlopsError("a forced promotion needs a reason (reason='...')")
    target = require_version(client, name, version)
    spec = (
        parse_gates(gates, f"promote(gates=...) for {alias!r}")
        if gates is not None
        else configured_gates(settings, alias)
    )
    metrics, tags = _run_metrics(client, target.run_id)
    parity = tags.get("mlops.parity_passed")
    holder = alias_holder(client, name, alias)
    current = None
    if holder is not None and holder.version != target.version:
        current = (str(holder.version), _run_metrics(client, holder.run_id)[0])
    evaluation = None
    if spec.needs_evaluation:
        from ..analysis.records import find_evaluation

        evaluation = find_evaluation(client, target.run_id)
    parity_passed = None if parity is None else parity == "true"
    results = evaluate(spec, metrics, parity_passed, current, evaluation)
    failed = [g for g in results if not g.passed]
    if spec.empty:
        verdict = "no gates"
    elif failed:
        verdict = "forced" if force else "refused"
    else:
        verdict = "passed"
    client.set_model_version_tag(
        name,
        target.version,
        f"mlops.gate.{alias}",
        json.dumps({"verdict": verdict, "gates": [g.to_dict() for g in results]})[:5000],
    )
    if failed and not force:
        refused = PromotionRefused(name, str(target.version), alias, failed)
        _note_on_step_run(client, str(refused))
        raise refused
    previous = str(holder.version) if holder is not None else None
    client.set_registered_model_alias(name, alias, target.version)
    _append_history(
        client,
        name,
        AliasMove(alias, previous, str(target.version), _who(), _now(), reason, "promote", verdict),
    )
    return PromotionResult(name, str(target.version), alias, previous, results, verdict)


def rollback_target(moves: list[AliasMove], alias: str, holder: str) -> str | None:
    """The version ``alias`` (held by ``holder``) would roll back to, or None.

    It walks back along promotions, so a second rollback goes further back, not forward
    again. A promotion of the version that already held the alias moved nothing and is
    passed over: rolling back never "moves" an alias to the version it is on.
    """
    landing = next(
        (
            m
            for m in reversed(moves)
            if m.alias == alias
            and m.kind == "promote"
            and m.to_version == holder
            and m.from_version != holder
        ),
        None,
    )
    return landing.from_version if landing is not None else None


def rollback(
    name: str, alias: str = "champion", reason: str = "", *, settings: Settings | None = None
) -> AliasMove:
    """Move ``alias`` back to the version that held it before the current one.

    Refused (``MlopsError``, nothing moved) when no other version held it before.
    """
    settings, client = _client(settings)
    require_model(client, name)
    holder = alias_holder(client, name, alias)
    if holder is None:
        raise NotFoundError(f"model {name!r} has no alias {alias!r}")
    target = rollback_target(history(name, settings=settings), alias, str(holder.version))
    if target is None:
        raise MlopsError(
            f"nothing to roll back to: {name}@{alias} had no holder before v{holder.version}"
            " (promote another version instead)"
        )
    client.set_registered_model_alias(name, alias, target)
    move = AliasMove(
        alias,
        str(holder.version),
        target,
        _who(),
        _now(),
        reason or "rollback",
        "rollback",
        "rollback",
    )
    _append_history(client, name, move)
    return move


def models(name: str | None = None, *, settings: Settings | None = None) -> list[ModelInfo]:
    """Registered models with their versions, aliases, gate results and history."""
    settings, client = _client(settings)
    found = [require_model(client, name)] if name else list(client.search_registered_models())
    out = []
    for model in sorted(found, key=lambda m: m.name):
        aliases = {a: str(v) for a, v in (model.aliases or {}).items()}
        by_version: dict[str, list[str]] = {}
        for a, v in aliases.items():
            by_version.setdefault(v, []).append(a)
        versions = []
        for v in client.search_model_versions(f"name = '{model.name}'"):
            tags = v.tags or {}
            gates = {
                k.removeprefix("mlops.gate."): json.loads(t).get("verdict", "")
                for k, t in tags.items()
                if k.startswith("mlops.gate.")
            }
            parity = tags.get("mlops.parity_passed")
            metrics = _version_metrics(client, v.run_id)
            versions.append(
                VersionInfo(
                    version=str(v.version),
                    run_id=v.run_id,
                    status=str(v.status),
                    created=int(v.creation_timestamp or 0),
                    aliases=sorted(by_version.get(str(v.version), [])),
                    parity_passed=None if parity is None else parity == "true",
                    gates=gates,
                    metrics=metrics,
                )
            )
        versions.sort(key=lambda v: int(v.version))
        tagged = sorted((k, t) for k, t in model.tags.items() if k.startswith(_HISTORY))
        moves = [AliasMove(**json.loads(t)) for _, t in tagged]
        targets = {a: rollback_target(moves, a, v) for a, v in aliases.items()}
        out.append(ModelInfo(model.name, aliases, versions, moves, targets))
    return out


def _version_metrics(client: Any, run_id: str | None) -> dict[str, float]:
    """The metrics of a version's run; none when the run is gone (a deleted experiment)."""
    from mlflow.exceptions import MlflowException

    try:
        metrics = _run_metrics(client, run_id)[0]
    except MlflowException:
        return {}
    return {k: v for k, v in sorted(metrics.items()) if not k.startswith("mlops.")}


def format_models(infos: list[ModelInfo]) -> str:
    """A readable listing for the magic and the CLI."""
    if not infos:
        return "no registered models"
    from ..table import format_rows

    rows = []
    for m in infos:
        for v in reversed(m.versions):
            parity = {None: "", True: "passed", False: "FAILED"}[v.parity_passed]
            gates = ", ".join(f"{a}:{g}" for a, g in sorted(v.gates.items()))
            rows.append([m.name, v.version, ", ".join(v.aliases), parity, gates, v.run_id or ""])
    return format_rows(("model", "version", "aliases", "parity", "gates", "run id"), rows)
