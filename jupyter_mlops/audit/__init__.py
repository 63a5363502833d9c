"""Audit reports: a model version from its deployment back to the cells that trained it."""

from .facts import AuditFacts, AuditReport
from .service import audit

__all__ = ["AuditFacts", "AuditReport", "audit"]
