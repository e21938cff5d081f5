"""Refunds: from the customer's credit balance, or of a payment (taken back off the
invoices it paid, newest first, which are open again for that much).

A payment that came through Stripe is refunded at Stripe first (``refund_create``), outside
any transaction, and booked by ``refund_issue`` only once Stripe confirms, under the Stripe
refund id (one Refund per id, so the API answer, the webhooks and the scheduled check book it
once). No local row records the request before Stripe is called (ProcessorAttempt cannot hold
a refund without a migration), so the Idempotency-Key is derived from the payment, how many
refunds of it are booked and the amount: a retry of a request whose answer was lost replays
Stripe's first answer instead of refunding again. A refund Stripe made but that is not booked
yet (no answer, a crash before booking, or one made in the Stripe dashboard) is booked by the
charge.refunded / refund.* webhooks or by ``stripe_refunds_resolve``, which lists Stripe's
recent refunds every ten minutes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from djmoney.money import Money

from billing.enums import InvoiceStatus
from billing.exceptions import BillingError, CurrencyMismatch
from billing.models import Customer, Invoice, Payment, Refund, RefundAllocation
from billing.postings import ar_functional_change, invoice_settled
from billing.processors import (
    ProcessorDeclined,
    ProcessorNotConfigured,
    ProcessorUnreachable,
)
from billing.processors import stripe as stripe_adapter
from billing.services.payments import PROCESSOR_METHODS
from core.dates import DateKind, date_check
from core.exceptions import Conflict, DomainError, PermissionDeniedError
from core.fx import fx_rate_get
from core.ledger.enums import AccountRole
from core.ledger.models import Account
from core.ledger.services import LineSpec, journal_post
from core.money import (
    check_amount,
    format_amount,
    minor_unit_exponent,
    round_storage,
    to_minor_units,
)
from core.system_settings import system_settings

logger = logging.getLogger(__name__)

ZERO = Decimal(0)
# How far back the scheduled check lists Stripe's refunds: past Stripe's webhook retries
# (three days) and its 24-hour idempotency window.
STRIPE_REFUND_LOOKBACK = timedelta(days=4)


class RefundRefused(Conflict):
    """The processor refused the refund; nothing was booked. ``details`` carry its code."""

    code = "refund_refused"


@dataclass(frozen=True, slots=True)
class RefundOutcome:
    """A refund booked (``refund`` set), or given to the processor and not confirmed yet
    (status "pending": no answer, or Stripe still processing it; booked when it confirms)."""

    status: str
    refund: Refund | None = None
    processor_refund_id: str = ""
    idempotency_key: str = ""
    message: str = ""


def _refunded_per_invoice(payment: Payment) -> dict[int, Decimal]:
    rows = (
        RefundAllocation.objects.filter(refund__payment=payment)
        .values("invoice_id")
        .annotate(total=Sum("amount"))
    )
    return {r["invoice_id"]: r["total"] for r in rows}


def refund_issue(
    *,
    actor: Any,
    customer_id: int,
    amount: Decimal,
    reason: str,
    payment_id: int | None = None,
    refund_date: date | None = None,
    processor_refund_id: str | None = None,
    invoices_first: bool = False,
    invoice_id: int | None = None,
) -> Refund:
    """Give money back. Without a payment it comes out of the credit balance. With one, the
    payment's overpayment still on the credit balance goes first, then what it paid on
    invoices, newest allocation first. Refused, with nothing written, beyond what is there.

    ``invoices_first`` (a chargeback: the money is taken back for what it paid): what the
    payment paid on ``invoice_id`` first, then on its other invoices newest first, and only
    then its overpayment on the credit balance."""
    _check_request(actor=actor, reason=reason)
    if refund_date is not None and actor is not None:
        date_check(refund_date, field="refund_date", kind=DateKind.RECEIVED)
    on = refund_date or timezone.localdate()
    with transaction.atomic():
        customer = Customer.objects.select_for_update().get(pk=customer_id)
        if processor_refund_id:
            existing = Refund.objects.filter(processor_refund_id=processor_refund_id).first()
            if existing is not None:
                return existing
        payment, currency, from_credit, takes = _plan(
            customer=customer,
            payment_id=payment_id,
            amount=amount,
            invoices_first=invoices_first,
            invoice_id=invoice_id,
        )
        from_invoices = amount - from_credit
        refund = Refund.objects.create(
            customer=customer,
            payment=payment,
            currency=currency,
            amount=Money(amount, currency),
            from_credit_balance=Money(from_credit, currency),
            from_invoices=Money(from_invoices, currency),
            reason=reason,
            refund_date=on,
            processor_refund_id=processor_refund_id,
            created_by=actor if getattr(actor, "pk", None) else None,
        )
        RefundAllocation.objects.bulk_create(
            [
                RefundAllocation(
                    refund=refund, invoice=inv, currency=currency, amount=Money(p, currency)
                )
                for inv, p in takes
            ]
        )
        for invoice, part in takes:
            invoice.amount_paid = invoice.amount_paid - Money(part, currency)
            if invoice.status == InvoiceStatus.PAID and invoice.amount_due.amount > 0:
                invoice.reopen()
            invoice.save(update_fields=["amount_paid", "status", "closed_at"])
        if from_credit:
            customer.credit_balance = customer.credit_balance - Money(from_credit, currency)
            customer.save(update_fields=["credit_balance"])
        refund.ledger_entry = _post(refund, payment, takes, from_credit, actor)
        refund.save(update_fields=["ledger_entry"])
    return refund


def _check_request(*, actor: Any, reason: str) -> None:
    if actor is not None and not actor.has_perm("billing.add_refund"):
        raise PermissionDeniedError("Your role does not allow refunds.")
    if not reason.strip():
        raise BillingError("A refund needs a reason.", code="reason_required")


def _plan(
    *,
    customer: Customer,
    payment_id: int | None,
    amount: Decimal,
    invoices_first: bool = False,
    invoice_id: int | None = None,
) -> tuple[Payment | None, str, Decimal, list[tuple[Invoice, Decimal]]]:
    """Where a refund of ``amount`` comes from (credit balance, then the payment's invoices,
    newest allocation first; or, ``invoices_first``, the invoices with ``invoice_id`` first,
    then the credit balance), under the caller's locks; refused beyond what is there."""
    payment = None
    if payment_id is not None:
        payment = Payment.objects.select_for_update().get(pk=payment_id)
        if payment.customer_id != customer.pk:
            raise BillingError("That payment is not this customer's.", field="payment")
    currency = payment.currency if payment else customer.currency
    check_amount(amount, currency, field="amount")
    if amount <= 0:
        raise BillingError("A refund must be positive.", field="amount")

    from_credit = ZERO
    takes: list[tuple[Invoice, Decimal]] = []
    if payment is None:
        from_credit = amount
    else:
        already = payment.refunds.aggregate(t=Sum("amount"))["t"] or ZERO
        if amount > payment.amount.amount - already:
            raise BillingError(
                f"Only {format_amount(payment.amount.amount - already, currency)} of this "
                "payment is left to refund.",
                code="over_refund",
            )
        refunded_credit = payment.refunds.aggregate(t=Sum("from_credit_balance"))["t"] or ZERO
        overpaid = payment.amount.amount - payment.amount_allocated.amount - refunded_credit
        if currency == customer.currency and not invoices_first:
            from_credit = min(amount, overpaid, customer.credit_balance.amount)
        left = amount - from_credit
        refunded = _refunded_per_invoice(payment)
        allocations = list(payment.allocations.order_by("-pk"))
        allocations.sort(key=lambda a: a.invoice_id != invoice_id)  # stable: the rest newest first
        invoices = {
            i.pk: i
            for i in Invoice.objects.select_for_update()
            .filter(pk__in=[a.invoice_id for a in allocations])
            .order_by("pk")
        }
        for allocation in allocations:
            if left <= 0:
                break
            available = allocation.amount.amount - refunded.get(allocation.invoice_id, ZERO)
            part = min(left, available)
            if part > 0:
                takes.append((invoices[allocation.invoice_id], part))
                left -= part
        if invoices_first and left > 0 and currency == customer.currency:
            from_credit = min(left, overpaid, customer.credit_balance.amount)
            left -= from_credit
        if left > 0:
            raise BillingError(
                f"{format_amount(left, currency)} of the refund is neither on the credit "
                "balance nor on this payment's invoices.",
                code="over_refund",
            )
    if from_credit > customer.credit_balance.amount or (
        from_credit and currency != customer.currency
    ):
        if currency != customer.currency:
            raise CurrencyMismatch("The credit balance is kept in another currency.")
        balance = format_amount(customer.credit_balance.amount, currency)
        raise BillingError(f"The credit balance is only {balance}.", code="over_refund")
    return payment, currency, from_credit, takes


def _post(
    refund: Refund,
    payment: Payment | None,
    takes: list[tuple[Invoice, Decimal]],
    from_credit: Decimal,
    actor: Any,
) -> Any:
    """Dr customer credit and Dr AR (at each invoice's rate) / Cr cash or processor
    clearing (at the refund date's rate); the difference is realized FX."""
    currency = refund.currency
    rate = fx_rate_get(
        base=currency, quote=system_settings().functional_currency, on_date=refund.refund_date
    )
    accounts = {a.role: a for a in Account.objects.exclude(role=None)}
    via_processor = payment is not None and payment.method in PROCESSOR_METHODS
    cash_role = AccountRole.PROCESSOR_CLEARING if via_processor else AccountRole.CASH
    cash_f = round_storage(refund.amount.amount * rate)
    credit_f = round_storage(from_credit * rate)
    lines = []
    if from_credit:
        lines.append(
            LineSpec(
                accounts[AccountRole.CUSTOMER_CREDIT],
                currency,
                debit=from_credit,
                functional=credit_f,
            )
        )
    ar_total = sum((p for _, p in takes), ZERO)
    # The refund was taken off the invoices already: each goes back from (now + p) to now.
    ar_f = sum(
        (
            -ar_functional_change(
                settled_before=invoice_settled(inv) + p,
                settled_after=invoice_settled(inv),
                rate=inv.fx_rate,
            )
            for inv, p in takes
        ),
        ZERO,
    )
    if ar_total:
        lines.append(
            LineSpec(
                accounts[AccountRole.ACCOUNTS_RECEIVABLE], currency, debit=ar_total, functional=ar_f
            )
        )
    lines.append(
        LineSpec(accounts[cash_role], currency, credit=refund.amount.amount, functional=cash_f)
    )
    difference = credit_f + ar_f - cash_f
    if difference:
        # Positive: the money going out is worth less than the balances it clears (a gain).
        lines.append(
            LineSpec.functional_only(
                accounts[AccountRole.FX_GAIN_LOSS],
                currency,
                credit=difference if difference > 0 else ZERO,
                debit=-difference if difference < 0 else ZERO,
                memo="Realized FX gain/loss",
            )
        )
    return journal_post(
        lines=lines,
        entry_date=refund.refund_date,
        description=f"Refund {refund.pk} to {refund.customer.name}: {refund.reason}",
        source=f"billing.refund:{refund.pk}",
        idempotency_key=f"billing.refund:{refund.pk}",
        actor=actor if getattr(actor, "pk", None) else None,
    )


# --- refunds through Stripe -----------------------------------------------------------------


def refund_create(
    *,
    actor: Any,
    customer_id: int,
    amount: Decimal,
    reason: str,
    payment_id: int | None = None,
    refund_date: date | None = None,
) -> RefundOutcome:
    """Refund a customer: a payment that came through Stripe is refunded at Stripe and booked
    once Stripe confirms; any other refund (bank payments, credit balance) is booked at once
    with no processor call. A refusal by Stripe books nothing and raises RefundRefused."""
    payment = Payment.objects.filter(pk=payment_id).first() if payment_id is not None else None
    if payment is None or payment.processor != stripe_adapter.NAME:
        refund = refund_issue(
            actor=actor,
            customer_id=customer_id,
            amount=amount,
            reason=reason,
            payment_id=payment_id,
            refund_date=refund_date,
        )
        return RefundOutcome(status="succeeded", refund=refund)
    return _stripe_refund(
        actor=actor,
        customer_id=customer_id,
        payment=payment,
        amount=amount,
        reason=reason,
        refund_date=refund_date,
    )


def _stripe_refund(
    *,
    actor: Any,
    customer_id: int,
    payment: Payment,
    amount: Decimal,
    reason: str,
    refund_date: date | None,
) -> RefundOutcome:
    _check_request(actor=actor, reason=reason)
    stripe_adapter.stripe_client()  # refuses before anything if Stripe is not configured
    if not payment.processor_charge_id:
        raise BillingError("This Stripe payment has no charge id to refund.", field="payment")
    with transaction.atomic():
        # Refused here, before Stripe is asked, whatever refund_issue would refuse.
        customer = Customer.objects.select_for_update().get(pk=customer_id)
        _plan(customer=customer, payment_id=payment.pk, amount=amount)
        booked = payment.refunds.count()
    amount_minor = to_minor_units(amount, payment.currency)
    key = f"bo_refund_{payment.pk}_{booked + 1}_{amount_minor}"
    metadata = {
        stripe_adapter.REFUND_METADATA_KEY: key,
        "payment_id": str(payment.pk),
        "customer_id": str(customer_id),
        "reason": reason[:500],
    }
    try:
        result = stripe_adapter.refund_create(
            charge_id=payment.processor_charge_id,
            amount_minor=amount_minor,
            idempotency_key=key,
            metadata=metadata,
        )
    except ProcessorDeclined as exc:
        raise RefundRefused(
            f"Stripe refused the refund: {exc.message}", processor_code=exc.code
        ) from None
    except ProcessorUnreachable as exc:
        logger.warning("Stripe did not answer the refund %s: %s", key, exc)
        return RefundOutcome(
            status="pending",
            idempotency_key=key,
            message="Stripe did not answer; the refund is booked once Stripe confirms it.",
        )
    if result.failed:
        raise RefundRefused(
            f"Stripe refused the refund: {result.failure_reason or result.status}.",
            processor_code=result.failure_reason or result.status,
            processor_refund_id=result.id,
        )
    if not result.succeeded:
        return RefundOutcome(
            status="pending",
            processor_refund_id=result.id,
            idempotency_key=key,
            message=f"Stripe reports the refund {result.status}; it is booked once it succeeds.",
        )
    refund = refund_issue(
        actor=actor,
        customer_id=customer_id,
        amount=_major(result, payment.currency),
        reason=reason,
        payment_id=payment.pk,
        refund_date=refund_date,
        processor_refund_id=result.id,
    )
    return RefundOutcome(
        status="succeeded", refund=refund, processor_refund_id=result.id, idempotency_key=key
    )


def _major(result: stripe_adapter.RefundResult, currency: str) -> Decimal:
    if result.currency and result.currency != currency:
        raise CurrencyMismatch(
            f"Stripe refunded in {result.currency} a payment in {currency}; not booked."
        )
    return Decimal(result.amount_minor).scaleb(-minor_unit_exponent(currency))


def stripe_refund_record(*, refund: stripe_adapter.RefundResult) -> Refund | None:
    """Book a refund Stripe made (asked for here or in the Stripe dashboard) once it has
    succeeded, against the payment of its charge. None if it has not succeeded or is not of
    a payment of ours; the refund already booked under its id if there is one."""
    if not refund.succeeded or not refund.id:
        return None
    existing = Refund.objects.filter(processor_refund_id=refund.id).first()
    if existing is not None:
        return existing
    ids = [i for i in (refund.charge, refund.payment_intent) if i]
    payment = (
        Payment.objects.filter(processor=stripe_adapter.NAME, processor_charge_id__in=ids)
        .order_by("pk")
        .first()
        if ids
        else None
    )
    if payment is None:
        return None
    reason = refund.metadata.get("reason") or (
        f"Refunded in Stripe ({refund.reason.replace('_', ' ')})"
        if refund.reason
        else "Refunded in Stripe"
    )
    on = (
        timezone.localdate(datetime.fromtimestamp(refund.created, tz=UTC))
        if refund.created
        else None
    )
    return refund_issue(
        actor=None,
        customer_id=payment.customer_id,
        amount=_major(refund, payment.currency),
        reason=reason,
        payment_id=payment.pk,
        refund_date=on,
        processor_refund_id=refund.id,
    )


def stripe_refunds_resolve(*, now: datetime | None = None) -> dict[str, int]:
    """Book every succeeded Stripe refund of the last days not booked yet (a lost answer, a
    crash before booking, a missed webhook, a dashboard refund). Idempotent; does nothing if
    Stripe is not configured. Returns the counts that are not zero."""
    if not getattr(settings, "STRIPE_SECRET_KEY", ""):
        return {}
    now = now or timezone.now()
    lookback = timedelta(
        seconds=float(
            getattr(
                settings,
                "STRIPE_REFUND_LOOKBACK_SECONDS",
                STRIPE_REFUND_LOOKBACK.total_seconds(),
            )
        )
    )
    try:
        refunds = [
            r
            for r in stripe_adapter.refunds_list(created_gte=int((now - lookback).timestamp()))
            if r.succeeded
        ]
    except ProcessorNotConfigured:
        return {}
    booked = set(
        Refund.objects.filter(processor_refund_id__in=[r.id for r in refunds]).values_list(
            "processor_refund_id", flat=True
        )
    )
    counts: dict[str, int] = {}
    for refund in sorted(refunds, key=lambda r: (r.created, r.id)):
        if refund.id in booked:
            continue
        try:
            outcome = "refunds_booked" if stripe_refund_record(refund=refund) else None
        except DomainError as exc:
            logger.error("Stripe refund %s could not be booked: %s", refund.id, exc.message)
            outcome = "refunds_not_booked"
        if outcome:
            counts[outcome] = counts.get(outcome, 0) + 1
    return counts
