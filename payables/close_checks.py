"""Payables' items of a month-end close (``core.ledger.close``): every bill dated in the
month is approved (or void)."""

from __future__ import annotations

from datetime import date

from core.ledger.close import CloseCheck, register_close_check
from payables.enums import BillStatus
from payables.models import Bill


def _no_unapproved_bills(first: date, last: date) -> tuple[bool, str, str]:
    waiting = Bill.objects.filter(
        bill_date__range=(first, last),
        status__in=(BillStatus.DRAFT, BillStatus.PENDING_APPROVAL),
    ).count()
    if not waiting:
        return True, "", ""
    return (
        False,
        f"{waiting} bill(s) dated in the month are not approved.",
        "/admin/payables/bill/?status__in=draft,pending_approval",
    )


def register() -> None:
    register_close_check(
        CloseCheck(
            "payables.no_unapproved_bills",
            "No unapproved bills dated in the month",
            _no_unapproved_bills,
        )
    )
