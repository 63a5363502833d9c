"""Quick answers about a store before anything waits on it: a known URI scheme, a server that
answers. MLflow's own client retries a dead server for minutes; a user asking
``jupyter mlops runs`` wants one line within seconds instead."""

from __future__ import annotations

import re
from functools import lru_cache

from .config import Settings
from .exceptions import StoreError

#: schemes MLflow's tracking and registry stores understand without a plugin
_BUILT_IN = frozenset(
    {
        "sqlite",
        "postgresql",
        "mysql",
        "mssql",
        "http",
        "https",
        "file",
        "databricks",
        "databricks-uc",
        "uc",
    }
)
_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@/\s]+@")


def redact_uri(uri: str) -> str:
    """``uri`` with any password replaced by ``***``."""
    return _PASSWORD.sub(r"\1***@", uri)


@lru_cache(maxsize=1)
def _plugin_schemes() -> frozenset[str]:
    import importlib.metadata  # here: it costs a command that never asks ~0.1 s

    names: set[str] = set()
    for group in ("mlflow.tracking_store", "mlflow.model_registry_store"):
        names.update(ep.name for ep in importlib.metadata.entry_points(group=group))
    return frozenset(names)


def check_scheme(uri: str, variable: str = "MLFLOW_TRACKING_URI") -> None:
    """Refuse a store URI whose scheme no MLflow store (built in or plugin) handles."""
    scheme = uri.split(":", 1)[0].lower() if ":" in uri else ""
    base = scheme.split("+", 1)[0]
    if base in _BUILT_IN or scheme in _plugin_schemes():
        return
    shown = redact_uri(uri)
    raise StoreError(
        f"{variable}={shown}: unknown store scheme {scheme or '(none)'!r}; use "
        "sqlite:///PATH, http(s)://HOST:PORT (a tracking server) or postgresql://... "
        f"(or unset {variable} for the project's own store)"
    )


def check_reachable(settings: Settings, timeout: float = 3.0) -> None:
    """Raise a one-line ``StoreError`` when the store's scheme is unknown or its server is
    down; a local database is always reachable."""
    for uri, variable in (
        (settings.tracking_uri, "MLFLOW_TRACKING_URI"),
        (settings.registry_uri, "MLFLOW_REGISTRY_URI"),
    ):
        check_scheme(uri, variable)
        if not uri.lower().startswith(("http://", "https://")):
            continue
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout):
                pass
        except urllib.error.HTTPError:
            continue  # it answered: reachable (it may want credentials for /health)
        except (urllib.error.URLError, OSError, ValueError) as err:
            reason = getattr(err, "reason", err)
            raise StoreError(
                f"cannot reach the tracking server {redact_uri(uri)} ({variable}): {reason}"
            ) from None
