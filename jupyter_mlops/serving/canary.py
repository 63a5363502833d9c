"""A canary share for a running deployment, and its recent request rate."""

from __future__ import annotations

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
    from .capture import count_since

    settings = settings or load_settings()
    directory = settings.state_dir / "inference" / deployment_id
    if not directory.is_dir():
        return 0.0
    return count_since(directory, time.time() - window_s) / window_s
