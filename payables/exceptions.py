"""Payables refusals, each with a stable code (see core.exceptions)."""

from __future__ import annotations

from core.exceptions import Conflict, DomainError, PermissionDeniedError


class PayablesError(DomainError):
    code = "payables_error"


class ApprovalRefused(PermissionDeniedError):
    """An approval by someone not allowed: the requester, a role without the right, or an
    approver already counted. ``code`` says which."""

    code = "approval_not_allowed"


class InvalidState(Conflict):
    code = "invalid_state"


class DuplicateBill(Conflict):
    code = "duplicate_bill"


class VendorNotPayable(Conflict):
    code = "vendor_not_active"


class UploadRefused(PayablesError):
    code = "upload_refused"
