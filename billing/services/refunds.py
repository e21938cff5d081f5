"""Refunds: from the customer's credit balance, or of a payment (taken back off the
invoices it paid, newest first, which are open again for that much)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from djmoney.money import Money

from billing.enums import InvoiceStatus
from billing.exceptions import BillingError, CurrencyMismatch
from billing.models import Customer, Invoice, Payment, Refund, RefundAllocation
from billing.services.payments import PROCESSOR_METHODS
from core.exceptions import PermissionDeniedError
from core.fx import fx_rate_get
from core.ledger.enums import AccountRole
from core.ledger.models import Account
from core.ledger.services import LineSpec, journal_post
from core.money import check_amount, format_amount, round_storage
from core.system_settings import system_settings

ZERO = Decimal(0)


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
) -> Refund:
    """Give money back. Without a payment it comes out of the credit balance. With one, the
    payment's overpayment still on the credit balance goes first, then what it paid on
    invoices, newest allocation first. Refused, with nothing written, beyond what is there."""
    if actor is not None and not actor.has_perm("billing.add_refund"):
        raise PermissionDeniedError("Your role does not allow refunds.")
    if not reason.strip():
        raise BillingError("A refund needs a reason.", code="reason_required")
    on = refund_date or timezone.localdate()
    with transaction.atomic():
        customer = Customer.objects.select_for_update().get(pk=customer_id)
        if processor_refund_id:
            existing = Refund.objects.filter(processor_refund_id=processor_refund_id).first()
            if existing is not None:
                return existing
        payment = None
        if payment_id is not None:
            payment = Payment.objects.select_for_update().get(pk=payment_id)
            if payment.customer_id != customer.pk:
                raise BillingError("That payment is not this customer's.", field="payment")
        currency = payment.currency if payment else customer.currency
        check_amount(amount, currency)
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
            if currency == customer.currency:
                from_credit = min(amount, overpaid, customer.credit_balance.amount)
            left = amount - from_credit
            refunded = _refunded_per_invoice(payment)
            allocations = list(payment.allocations.order_by("-pk"))
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
    ar_f = sum((round_storage(p * (inv.fx_rate or 1)) for inv, p in takes), ZERO)
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
