"""The reconciliation exceptions queue: raising an exception (once per problem) and clearing
it when the problem goes away. Other parts (payouts, feeds, matching) report through
``exception_raise`` and ``exception_clear``."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.utils import timezone

from reconciliation.enums import ExceptionKind, ExceptionStatus
from reconciliation.models import ReconciliationException


def exception_raise(
    *,
    kind: ExceptionKind | str,
    key: str,
    message: str,
    bank_account_id: int | None = None,
    statement_id: int | None = None,
    line_id: int | None = None,
    other_line_id: int | None = None,
    payout_id: int | None = None,
    match_id: int | None = None,
    amount: Decimal | None = None,
    difference: Decimal | None = None,
    currency: str = "",
) -> ReconciliationException:
    """Record a problem once: ``key`` names it ("payout_mismatch:po_123"). Raising it again
    while open refreshes the message and figures; a resolved one stays resolved (a person
    decided about it), unless its figures changed, when it opens again."""
    fields: dict[str, Any] = {
        "kind": kind,
        "message": message,
        "bank_account_id": bank_account_id,
        "statement_id": statement_id,
        "line_id": line_id,
        "other_line_id": other_line_id,
        "payout_id": payout_id,
        "match_id": match_id,
        "amount": amount,
        "difference": difference,
        "currency": currency,
    }
    existing = ReconciliationException.objects.select_for_update().filter(key=key).first()
    if existing is None:
        return ReconciliationException.objects.create(key=key, **fields)
    changed = existing.amount != amount or existing.difference != difference
    if existing.status == ExceptionStatus.RESOLVED and not changed:
        return existing
    for name, value in fields.items():
        setattr(existing, name, value)
    if existing.status == ExceptionStatus.RESOLVED:
        existing.status = ExceptionStatus.OPEN
        existing.resolved_at = None
        existing.resolved_by = None
        existing.resolution_note = ""
        existing.detected_at = timezone.now()
    existing.save()
    return existing


def exception_clear(*, key: str, note: str, actor: Any = None) -> ReconciliationException | None:
    """The problem went away (the line was matched, the payout adds up): an open exception
    is resolved with ``note``; None when there was none open."""
    existing = (
        ReconciliationException.objects.select_for_update()
        .filter(key=key, status=ExceptionStatus.OPEN)
        .first()
    )
    if existing is None:
        return None
    existing.status = ExceptionStatus.RESOLVED
    existing.resolved_at = timezone.now()
    existing.resolved_by = actor if getattr(actor, "pk", None) else None
    existing.resolution_note = note
    existing.save()
    return existing
