"""Domain errors: each has a stable machine code and maps to one HTTP status in the API."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A refusal by the business rules. ``code`` is stable; the message is for people."""

    code: str = "domain_error"
    status_code: int = 400

    def __init__(
        self, message: str, *, code: str | None = None, field: str | None = None, **details: Any
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        # The input the refusal is about ("lines[2].unit_price"): the API puts the message
        # under it in ``errors`` so a client shows it beside that input.
        self.field = field
        self.details = {**details, "field": field} if field else details


class Conflict(DomainError):
    """The request clashes with the current state of the resource (HTTP 409)."""

    code = "conflict"
    status_code = 409


class PermissionDeniedError(DomainError):
    code = "permission_denied"
    status_code = 403


class NotFound(DomainError):
    code = "not_found"
    status_code = 404
