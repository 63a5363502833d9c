"""A canary share for a running deployment, and its recent request rate."""

from __future__ import annotations

import datetime
import json
import time

from ..config import Settings, load_settings
from .manager import Deployment, DeploymentError, get_deployment, set_traffic


def stable_version(deployment: Deployment, canary: str) -> str:
    """The version that keeps the rest of the traffic: the heaviest one other than ``canary``."""
    others = {v: w for v, w in deployment.weights.items() if v != str(canary)}
    if not others:
        raise DeploymentError(
            f"deployment {deployment.id!r} serves only v{canary}: deploy or switch to another "
            f"version first, then send part of the traffic to v{canary}"
        )
    return max(sorted(others), key=lambda v: others[v])


def set_canary(
    deployment_id: str, version: str, weight: float, *, settings: Settings | None = None
) -> Deployment:
    """Send ``weight`` of the traffic to ``version``, the rest to the stable version.

    >>> set_canary("digits-prod", "4", 0.25)  # doctest: +SKIP
    """
    settings = settings or load_settings()
    if not 0 <= weight < 1:
        raise DeploymentError(f"canary weight must be at least 0 and below 1, got {weight:g}")
    deployment = get_deployment(deployment_id, settings=settings)
    stable = stable_version(deployment, str(version))
    weights = {stable: 1 - weight}
    if weight > 0:
        weights[str(version)] = weight
    return set_traffic(deployment_id, weights, settings=settings)


def request_rate(
    deployment_id: str, window_s: float = 60.0, *, settings: Settings | None = None
) -> float:
    """Requests per second over the last ``window_s``, from the captured traffic."""
    settings = settings or load_settings()
    directory = settings.state_dir / "inference" / deployment_id
    since = time.time() - window_s
    # capture files are hourly: only those of the window's hours are read
    first = datetime.datetime.fromtimestamp(since, datetime.timezone.utc).strftime("%Y%m%d-%H")
    count = 0
    for path in sorted(directory.glob("capture-*.jsonl")) if directory.is_dir() else []:
        if path.stem.removeprefix("capture-") < first:
            continue
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    count += json.loads(line).get("time", 0) >= since
                except ValueError:
                    continue
    return count / window_s
