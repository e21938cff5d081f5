"""The reconciliation audit trail: one ``AuditEvent`` per import, feed sync, payout, match
decision, rule change, exception decision and sign-off (who, when, why). Written in the same
transaction as what it records, so an event exists exactly when its change does."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.db.models import Model

from reconciliation.actors import acting_user
from reconciliation.enums import AuditAction
from reconciliation.models import AuditEvent


def subject_of(obj: Model) -> str:
    """ "match:42" for a Match with pk 42."""
    return f"{obj._meta.model_name}:{obj.pk}"


def audit_record(
    *,
    action: AuditAction | str,
    actor: Any,
    subject: Model | str = "",
    bank_account_id: int | None = None,
    reason: str = "",
    details: Mapping[str, Any] | None = None,
) -> AuditEvent:
    return AuditEvent.objects.create(
        action=action,
        actor=acting_user(actor),
        subject=subject if isinstance(subject, str) else subject_of(subject),
        bank_account_id=bank_account_id,
        reason=reason,
        details=dict(details or {}),
    )


def audit_record_many(
    *,
    action: AuditAction | str,
    actor: Any,
    events: Iterable[tuple[Model | str, int | None, Mapping[str, Any], str]],
) -> int:
    """Many events of one action (a reconciliation run's automatic matches): (subject,
    bank_account_id, details, reason) each, written in one statement per 2,000."""
    rows = [
        AuditEvent(
            action=action,
            actor=acting_user(actor),
            subject=subject if isinstance(subject, str) else subject_of(subject),
            bank_account_id=bank_account_id,
            reason=reason,
            details=dict(details),
        )
        for subject, bank_account_id, details, reason in events
    ]
    AuditEvent.objects.bulk_create(rows, batch_size=2000)
    return len(rows)
