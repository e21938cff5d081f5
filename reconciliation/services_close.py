"""Signing a bank account's reconciliation off for a period, and reopening it.

A controller signs off when the report (``selectors_close.reconciliation_report``) leaves
nothing unexplained and no suggestion waits for a decision. The sign-off keeps the report
as signed and locks the bank's ledger account, in the bank's currency, through the period
end (``core.ledger.services.account_lock_set``): from then on no one posts to it in that
period (RELIABILITY.md C4), and matches of its lines in that period cannot be made or undone
until the period is reopened. Segregation of duties: who made or accepted matches in the
period does not sign it off.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.db import transaction
from django.utils import timezone

from core.exceptions import Conflict, NotFound, PermissionDeniedError
from core.ledger.services import account_lock_set
from reconciliation.actors import permission_check
from reconciliation.audit import audit_record
from reconciliation.enums import AuditAction, MatchStatus, SignOffStatus
from reconciliation.exceptions import ReconciliationError
from reconciliation.models import BankAccount, Match, SignOff
from reconciliation.selectors_close import reconciliation_report

SIGN_OFF = "reconciliation.sign_off_reconciliation"


class PeriodSignedOff(Conflict):
    code = "period_signed_off"


def signed_off_through(bank_account_id: int) -> date | None:
    """The end of the last period signed off for this bank account, or None."""
    return (
        SignOff.objects.filter(bank_account_id=bank_account_id, status=SignOffStatus.SIGNED)
        .order_by("-period_end", "-pk")
        .values_list("period_end", flat=True)
        .first()
    )


def ensure_not_signed_off(*, bank_account_id: int, dates: list[date], what: str) -> None:
    """Refuse to change the reconciliation of lines in a signed-off period."""
    through = signed_off_through(bank_account_id)
    if through is not None and dates and min(dates) <= through:
        raise PeriodSignedOff(
            f"The reconciliation of this bank account is signed off through "
            f"{through.isoformat()}; {what} of a line dated {min(dates).isoformat()} needs "
            "the period reopened first.",
            signed_off_through=through.isoformat(),
        )


def sign_off_create(
    *,
    actor: Any,
    bank_account_id: int,
    period_start: date,
    period_end: date,
    note: str = "",
) -> SignOff:
    permission_check(actor, SIGN_OFF, "signing off bank reconciliations", system_allowed=False)
    if period_end > timezone.localdate():
        raise ReconciliationError(
            "A period can be signed off once it has ended.",
            code="period_not_ended",
            field="period_end",
        )
    with transaction.atomic():
        account = BankAccount.objects.select_for_update().filter(pk=bank_account_id).first()
        if account is None:
            raise NotFound(f"No bank account {bank_account_id}.")
        through = signed_off_through(account.pk)
        if through is not None and period_end <= through:
            raise PeriodSignedOff(
                f"{account} is signed off through {through.isoformat()} already; sign off a "
                "later period or reopen that one.",
                signed_off_through=through.isoformat(),
            )
        report = reconciliation_report(
            bank_account_id=account.pk, period_start=period_start, period_end=period_end
        )
        if report.suggestions_pending:
            raise Conflict(
                f"{report.suggestions_pending} suggested matches of this period wait for a "
                "decision; accept or reject them first.",
                code="suggestions_pending",
            )
        if report.unexplained != 0:
            d = report.as_dict(listed=0)
            raise Conflict(
                f"The statement balance {d['statement_balance']} and the book balance "
                f"{d['book_balance']} differ by {d['unexplained']} {report.currency} more "
                "than the reconciling items explain; find it before signing off.",
                code="unexplained_difference",
                unexplained=d["unexplained"],
            )
        made_matches = (
            Match.objects.filter(
                bank_account=account,
                status=MatchStatus.APPLIED,
                applied_by=actor,
                lines__line__booking_date__range=(period_start, period_end),
            )
            .distinct()
            .count()
        )
        if made_matches:
            raise PermissionDeniedError(
                f"You made or accepted {made_matches} matches in this period; another "
                "controller signs it off (segregation of duties).",
                code="signer_made_matches",
            )
        lock = account_lock_set(
            account=account.ledger_account,
            currency=account.currency,
            lock_date=period_end,
            reason=f"Bank reconciliation of {account} signed off through {period_end}",
            actor=actor,
        )
        sign_off = SignOff.objects.create(
            bank_account=account,
            period_start=period_start,
            period_end=period_end,
            currency=account.currency,
            statement_balance=report.statement_balance,
            book_balance=report.book_balance,
            unexplained=report.unexplained,
            report=report.as_dict(),
            note=note.strip(),
            signed_by=actor,
            period_lock=lock,
        )
        audit_record(
            action=AuditAction.SIGN_OFF,
            actor=actor,
            subject=sign_off,
            bank_account_id=account.pk,
            reason=note.strip(),
            details={
                "period_start": period_start.isoformat(),
                "period_end": period_end.isoformat(),
                "statement_balance": str(report.statement_balance),
                "book_balance": str(report.book_balance),
                "bank_items": len(report.bank_items),
                "book_items": len(report.book_items),
            },
        )
    return sign_off


def sign_off_reopen(*, actor: Any, sign_off_id: int, reason: str) -> SignOff:
    """Reopen the last signed-off period of a bank account: the ledger lock goes back to the
    end of the period signed off before it (none: open)."""
    permission_check(actor, SIGN_OFF, "signing off bank reconciliations", system_allowed=False)
    if not reason.strip():
        raise ReconciliationError("Say why.", code="reason_required", field="reason")
    with transaction.atomic():
        sign_off = SignOff.objects.select_for_update().filter(pk=sign_off_id).first()
        if sign_off is None:
            raise NotFound(f"No sign-off {sign_off_id}.")
        account = BankAccount.objects.select_for_update().get(pk=sign_off.bank_account_id)
        if sign_off.status != SignOffStatus.SIGNED:
            raise Conflict("This sign-off was reopened already.", code="not_signed")
        if signed_off_through(account.pk) != sign_off.period_end:
            raise Conflict(
                "Only the last signed-off period can be reopened; reopen the later ones first.",
                code="not_the_last_period",
            )
        sign_off.status = SignOffStatus.REOPENED
        sign_off.reopened_at = timezone.now()
        sign_off.reopened_by = actor
        sign_off.reopen_reason = reason.strip()
        sign_off.save(update_fields=["status", "reopened_at", "reopened_by", "reopen_reason"])
        previous = signed_off_through(account.pk)
        account_lock_set(
            account=account.ledger_account,
            currency=account.currency,
            lock_date=previous or date.min,
            reason=f"Bank reconciliation of {account} reopened after {previous or 'none'}: "
            f"{reason.strip()}",
            actor=actor,
        )
        audit_record(
            action=AuditAction.SIGN_OFF_REOPENED,
            actor=actor,
            subject=sign_off,
            bank_account_id=account.pk,
            reason=reason.strip(),
            details={"period_end": sign_off.period_end.isoformat()},
        )
    return sign_off
