"""No secret reaches a report: every string of the facts goes through the tracker's Redactor.

Cell source is masked as source (secret literals become ``***``), a value whose key looks
secret (``db_password``, ``api_key``) is masked whole, and any other text is masked where a
detector, a secret-looking environment variable or ``tracking.secret_patterns`` finds one.
Embedded images are left alone (they are pixels, and base64 looks random to any detector).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..config import Settings
from ..tracking.redact import MASK, Redactor
from .facts import Artifact, AuditFacts, RunFacts


class _Masker:
    def __init__(self, settings: Settings):
        self.redactor = Redactor(settings.tracking)

    def value(self, key: str, value: Any) -> Any:
        if isinstance(value, str):
            # a whole value masked only when it is one word (a token, a password): in a
            # sentence or a URI, mask_text masks just the secret part
            if self.redactor.is_secret(key, value) and " " not in value and "://" not in value:
                return MASK
            return self.redactor.mask_text(value)
        return self.any(value)

    def any(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.redactor.mask_text(value)
        if isinstance(value, dict):
            return {k: self.value(str(k), v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.any(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self.any(v) for v in value)
        if isinstance(value, Artifact):
            if value.kind != "image":
                value.content = self.redactor.mask_text(value.content)
            value.path = self.redactor.mask_text(value.path)
            return value
        if isinstance(value, RunFacts) and value.source is not None:
            value.source = self.redactor.mask_source(value.source)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            for f in dataclasses.fields(value):
                if f.name == "source" and isinstance(value, RunFacts):
                    continue
                setattr(value, f.name, self.value(f.name, getattr(value, f.name)))
        return value


def redact(facts: AuditFacts, settings: Settings) -> AuditFacts:
    """``facts`` with every secret masked (in place; also returned)."""
    _Masker(settings).any(facts)
    return facts
