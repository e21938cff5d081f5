"""Reconciliation domain errors, each with a stable code."""

from __future__ import annotations

from core.exceptions import DomainError


class ReconciliationError(DomainError):
    code = "reconciliation_error"


class ProcessorNotConfigured(ReconciliationError):
    """The processor has no credentials in the settings: nothing can be asked of it (503, as
    billing answers it)."""

    code = "processor_not_configured"
    status_code = 503


class StatementRefused(ReconciliationError):
    """The file is malformed or its totals do not add up; nothing was imported."""

    code = "statement_refused"


class StatementMismatch(ReconciliationError):
    """The statement belongs to another account or currency than the bank account."""

    code = "statement_mismatch"


class UploadTooLarge(ReconciliationError):
    code = "too_large"
    status_code = 413
