"""Late fees: how many are due, how much each is, charging one as its own receivable, waiving.

A fee is ``percentage`` % (per 30 days) of what the invoice has overdue, rounded to the
currency. Fee 1 falls due when the invoice is more than the grace period past due, fee n after
n-1 further full 30 days. A fee is a billing invoice of its own, posted Dr AR / Cr late-fee
income, and is never charged fees itself.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone
from djmoney.money import Money

from billing.enums import InvoiceStatus
from billing.models import Invoice
from billing.services.credit_notes import credit_note_issue
from billing.services.invoices import LineInput, invoice_create, invoice_issue, invoice_void
from core.exceptions import DomainError, PermissionDeniedError
from core.ledger.enums import AccountRole
from core.money import format_amount, round_money
from core.system_settings import system_settings
from receivables.enums import LateFeeStatus
from receivables.models import DunningPolicy, LateFee

ZERO = Decimal(0)
FEE_PERIOD_DAYS = 30


class LateFeeError(DomainError):
    code = "late_fee_error"


def fee_terms(policy: DunningPolicy | None) -> tuple[Decimal, int]:
    """(percentage per 30 days, grace days): the policy's overrides, else the settings."""
    billing = system_settings().billing
    pct = billing.late_fee_percentage
    grace = billing.collections_grace_period
    if policy is not None:
        if policy.late_fee_percentage is not None:
            pct = policy.late_fee_percentage
        if policy.grace_period_days is not None:
            grace = policy.grace_period_days
    return pct, grace


def fees_due_count(*, days_overdue: int, grace_days: int) -> int:
    """How many fees an invoice ``days_overdue`` past due has incurred: none through the grace
    period, one on the next day, one more for each further full 30 days."""
    if days_overdue <= grace_days:
        return 0
    return 1 + (days_overdue - grace_days - 1) // FEE_PERIOD_DAYS


def late_fee_amount(*, base: Decimal, percentage: Decimal, currency: str) -> Decimal:
    return round_money(base * percentage / 100, currency)


def fee_base(*, invoice: Invoice, compound: bool) -> Decimal:
    """What is overdue on the invoice now; with ``compound``, plus its unpaid earlier fees."""
    base = invoice.amount_due.amount
    if compound:
        for fee in invoice.late_fees.filter(status=LateFeeStatus.CHARGED).select_related(
            "fee_invoice"
        ):
            if fee.fee_invoice.status == InvoiceStatus.OPEN:
                base += fee.fee_invoice.amount_due.amount
    return base


def late_fee_charge(
    *,
    invoice: Invoice,
    sequence: int,
    base: Decimal,
    percentage: Decimal,
    days_overdue: int,
    on_date: date,
) -> LateFee | None:
    """Charge fee ``sequence`` on ``invoice`` (locked by the caller): a one-line invoice in
    the invoice's currency posted to late-fee income, linked by a LateFee row. None when the
    fee rounds to nothing. The unique (invoice, sequence) makes a second charge impossible."""
    currency = invoice.currency
    amount = late_fee_amount(base=base, percentage=percentage, currency=currency)
    if amount <= 0:
        return None
    with transaction.atomic():
        # The system charges the fee (actor None); the run's caller was checked already.
        fee_invoice = invoice_create(
            actor=None,
            customer_id=invoice.customer_id,
            currency=currency,
            issue_date=on_date,
            memo=late_fee_memo(invoice, sequence),
            lines=[late_fee_line(invoice, base, percentage, days_overdue, amount)],
        )
        fee_invoice = invoice_issue(
            actor=None,
            invoice_id=fee_invoice.pk,
            on_date=on_date,
            income_role=AccountRole.LATE_FEE_INCOME,
        )
        return LateFee.objects.create(
            **late_fee_fields(invoice, sequence, base, percentage, days_overdue, amount, on_date),
            fee_invoice=fee_invoice,
        )


def late_fee_memo(invoice: Invoice, sequence: int) -> str:
    return f"Late fee {sequence} on invoice {invoice.number}."


def late_fee_line(
    invoice: Invoice, base: Decimal, percentage: Decimal, days_overdue: int, amount: Decimal
) -> LineInput:
    """The one line of a fee invoice (untaxed)."""
    return LineInput(
        description=(
            f"Late fee on invoice {invoice.number}: {percentage.normalize():f}% of "
            f"{format_amount(base, invoice.currency)} overdue ({days_overdue} days)"
        ),
        quantity=Decimal(1),
        unit_price=amount,
        tax_rate=ZERO,
    )


def late_fee_fields(
    invoice: Invoice,
    sequence: int,
    base: Decimal,
    percentage: Decimal,
    days_overdue: int,
    amount: Decimal,
    on_date: date,
) -> dict[str, Any]:
    """The LateFee row's fields but its fee invoice."""
    currency = invoice.currency
    return {
        "invoice": invoice,
        "sequence": sequence,
        "currency": currency,
        "base_amount": Money(base, currency),
        "percentage": percentage,
        "amount": Money(amount, currency),
        "days_overdue": days_overdue,
        "charged_date": on_date,
    }


def late_fee_waive(*, actor: Any, late_fee_id: int, reason: str) -> LateFee:
    """Waive a fee: an unpaid fee invoice is voided (its posting reversed); one with payments
    or credits is credited for what is not credited yet (Dr late-fee income, the paid part
    going to the customer's credit balance). Who and why stay in the fee's history."""
    if actor is None or not actor.has_perm("receivables.waive_latefee"):
        raise PermissionDeniedError("Your role does not allow waiving late fees.")
    if not reason.strip():
        raise LateFeeError("Waiving a late fee needs a reason.", code="reason_required")
    with transaction.atomic():
        fee = LateFee.objects.select_for_update().select_related("fee_invoice").get(pk=late_fee_id)
        if fee.status != LateFeeStatus.CHARGED:
            raise LateFeeError(f"Late fee {fee.pk} is already {fee.status}.", code="not_charged")
        fee_invoice = fee.fee_invoice
        why = f"late fee waived: {reason}"
        if fee_invoice.status == InvoiceStatus.OPEN and not (
            fee_invoice.amount_paid.amount or fee_invoice.amount_credited.amount
        ):
            invoice_void(actor=None, invoice_id=fee_invoice.pk, reason=why)
        elif fee_invoice.status in (InvoiceStatus.OPEN, InvoiceStatus.PAID):
            credit_note_issue(
                actor=None,
                invoice_id=fee_invoice.pk,
                reason=why,
                income_role=AccountRole.LATE_FEE_INCOME,
            )
        else:
            raise LateFeeError(
                f"The fee's invoice {fee_invoice} is {fee_invoice.status}; it cannot be waived.",
                code="not_waivable",
            )
        fee.status = LateFeeStatus.WAIVED
        fee.waived_at = timezone.now()
        fee.waived_by = actor
        fee.waive_reason = reason.strip()[:300]
        fee._change_reason = reason.strip()[:100]  # type: ignore[attr-defined]
        fee.save(update_fields=["status", "waived_at", "waived_by", "waive_reason"])
    return fee
