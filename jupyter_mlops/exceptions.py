"""One error root. Each subclass carries what a user needs to fix the cause."""

from __future__ import annotations


class MlopsError(Exception):
    """Base of every error jupyter-mlops raises on purpose.

    Doors translate it once: a magic prints ``str(err)`` without a traceback, the CLI
    exits non-zero with the message, the REST layer answers 4xx with it as JSON.
    """

    #: HTTP status a REST door answers with.
    status = 400


class ConfigError(MlopsError):
    """``mlops.yaml`` (or an environment override) is not valid."""

    def __init__(self, message: str, *, path: str | None = None, field: str | None = None):
        where = ""
        if path:
            where = f"{path}: "
        if field:
            where += f"{field}: "
        super().__init__(f"{where}{message}")
        self.path = path
        self.field = field


class StoreError(MlopsError):
    """The tracking store cannot be reached or refused a write."""

    status = 503


class UsageError(MlopsError):
    """A door was called with arguments it cannot parse."""

    def __init__(self, message: str, usage: str = ""):
        super().__init__(f"{message}\n{usage}".rstrip())
        self.usage = usage


class NotFoundError(MlopsError):
    """A named run, model, version, deployment or file does not exist."""

    status = 404
