"""Billing's items of a month-end close (``core.ledger.close``): no invoice of the month is
still a draft."""

from __future__ import annotations

from datetime import date

from django.db.models import Q

from billing.enums import InvoiceStatus
from billing.models import Invoice
from core.ledger.close import CloseCheck, register_close_check


def _no_draft_invoices(first: date, last: date) -> tuple[bool, str, str]:
    drafts = Invoice.objects.filter(status=InvoiceStatus.DRAFT).filter(
        Q(issue_date__range=(first, last))
        | Q(issue_date=None, created_at__date__range=(first, last))
    )
    count = drafts.count()
    if not count:
        return True, "", ""
    return (
        False,
        f"{count} draft invoice(s) of the month: issue or delete them.",
        "/admin/billing/invoice/?status__exact=draft",
    )


def register() -> None:
    register_close_check(
        CloseCheck(
            "billing.no_draft_invoices", "No draft invoices dated in the month", _no_draft_invoices
        )
    )
