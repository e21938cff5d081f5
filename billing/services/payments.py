"""Payments: recorded, allocated to invoices (explicitly or oldest due first), the rest to
the customer's credit balance, posted to the ledger with realized FX. The customer row is
locked first, then the invoices in id order: concurrent payments never overpay an invoice."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from djmoney.money import Money

from billing.enums import AllocationOrder, InvoiceStatus, PaymentMethodType
from billing.exceptions import BillingError, CurrencyMismatch, OverAllocation
from billing.models import Customer, Invoice, Payment, PaymentAllocation
from billing.postings import payment_lines
from core.exceptions import PermissionDeniedError
from core.fx import fx_rate_get
from core.ledger.models import Account
from core.ledger.services import journal_post
from core.money import check_amount, format_amount, round_storage
from core.system_settings import system_settings

ZERO = Decimal(0)
PROCESSOR_METHODS = {PaymentMethodType.CREDIT_CARD, PaymentMethodType.CRYPTOCURRENCY}


@dataclass(frozen=True, slots=True)
class AllocationInput:
    invoice_id: int
    amount: Decimal


ALLOCATION_ORDERS = {
    AllocationOrder.OLDEST_DUE: ("due_date", "issue_date", "pk"),
    AllocationOrder.NEWEST_DUE: ("-due_date", "-issue_date", "-pk"),
    AllocationOrder.SMALLEST: ("due", "due_date", "pk"),
    AllocationOrder.LARGEST: ("-due", "due_date", "pk"),
}


def _open_invoices_for_update(customer: Customer, currency: str) -> list[Invoice]:
    """The customer's open invoices in the currency, locked, in the customer's order
    (oldest due first unless the customer's settings say otherwise)."""
    order = ALLOCATION_ORDERS.get(
        customer.payment_allocation_order, ALLOCATION_ORDERS[AllocationOrder.OLDEST_DUE]
    )
    return list(
        Invoice.objects.select_for_update()
        .filter(customer=customer, currency=currency, status=InvoiceStatus.OPEN)
        .annotate(due=F("total") - F("amount_paid") - F("amount_credited"))
        .order_by(*order)
    )


def _plan(
    customer: Customer,
    currency: str,
    amount: Decimal,
    allocations: Sequence[AllocationInput] | None,
) -> list[tuple[Invoice, Decimal]]:
    if allocations is None:
        plan = []
        left = amount
        for invoice in _open_invoices_for_update(customer, currency):
            if left <= 0:
                break
            part = min(left, invoice.amount_due.amount)
            if part > 0:
                plan.append((invoice, part))
                left -= part
        return plan
    ids = [a.invoice_id for a in allocations]
    if len(set(ids)) != len(ids):
        raise BillingError("An invoice appears twice in the allocations.", field="allocations")
    invoices = {
        i.pk: i for i in Invoice.objects.select_for_update().filter(pk__in=ids).order_by("pk")
    }
    plan = []
    for a in allocations:
        invoice = invoices.get(a.invoice_id)
        if invoice is None or invoice.customer_id != customer.pk:
            raise BillingError(
                f"Invoice {a.invoice_id} is not an invoice of this customer.", field="allocations"
            )
        if invoice.currency != currency:
            raise CurrencyMismatch(
                f"Invoice {invoice.number} is in {invoice.currency}, the payment in {currency}."
            )
        if invoice.status != InvoiceStatus.OPEN:
            raise OverAllocation(f"Invoice {invoice} is {invoice.status}; it takes no payment.")
        check_amount(a.amount, currency)
        if a.amount <= 0:
            raise BillingError("Allocations must be positive.", field="allocations")
        if a.amount > invoice.amount_due.amount:
            raise OverAllocation(
                f"{format_amount(a.amount, currency)} is more than the "
                f"{format_amount(invoice.amount_due.amount, currency)} due on invoice "
                f"{invoice.number}.",
                invoice=invoice.pk,
                amount_due=invoice.amount_due.amount,
            )
        plan.append((invoice, a.amount))
    allocated = sum((part for _, part in plan), ZERO)
    if allocated > amount:
        raise OverAllocation(
            f"The allocations ({format_amount(allocated, currency)}) exceed the payment "
            f"({format_amount(amount, currency)})."
        )
    return plan


def payment_record(
    *,
    actor: Any,
    customer_id: int,
    amount: Decimal,
    currency: str,
    method: str,
    received_date: date | None = None,
    reference: str = "",
    allocations: Sequence[AllocationInput] | None = None,
    processor: str = "",
    processor_charge_id: str | None = None,
) -> Payment:
    """Record a received payment and apply it; nothing is recorded if any allocation is
    refused. A processor charge id is recorded once: a retry returns the first payment."""
    if actor is not None and not actor.has_perm("billing.record_payment"):
        raise PermissionDeniedError("Your role does not allow recording payments.")
    if method not in PaymentMethodType.values:
        raise BillingError(f"Unknown payment method {method!r}.", field="method")
    if method != PaymentMethodType.CHECK and method not in system_settings().payment_methods:
        raise BillingError(f"Payment method {method!r} is not enabled.", field="method")
    check_amount(amount, currency)
    if amount <= 0:
        raise BillingError("A payment amount must be positive.", field="amount")
    received_date = received_date or timezone.localdate()
    with transaction.atomic():
        customer = Customer.objects.select_for_update().get(pk=customer_id)
        if processor_charge_id:
            existing = Payment.objects.filter(processor_charge_id=processor_charge_id).first()
            if existing is not None:
                return existing
        plan = _plan(customer, currency, amount, allocations)
        to_invoices = sum((part for _, part in plan), ZERO)
        to_credit = amount - to_invoices
        if to_credit and currency != customer.currency:
            raise CurrencyMismatch(
                f"{format_amount(to_credit, currency)} would be left as credit, but the "
                f"customer's credit balance is kept in {customer.currency}; allocate the whole "
                "payment."
            )
        payment = Payment.objects.create(
            customer=customer,
            currency=currency,
            amount=Money(amount, currency),
            amount_allocated=Money(to_invoices, currency),
            method=method,
            received_date=received_date,
            reference=reference,
            processor=processor,
            processor_charge_id=processor_charge_id,
            created_by=actor if getattr(actor, "pk", None) else None,
        )
        payment.succeed()
        PaymentAllocation.objects.bulk_create(
            [
                PaymentAllocation(
                    payment=payment, invoice=inv, currency=currency, amount=Money(part, currency)
                )
                for inv, part in plan
            ]
        )
        for invoice, part in plan:
            invoice.amount_paid = invoice.amount_paid + Money(part, currency)
            if invoice.amount_due.amount == 0:
                invoice.mark_paid()
            invoice.save(update_fields=["amount_paid", "status", "closed_at"])
        if to_credit:
            customer.credit_balance = customer.credit_balance + Money(to_credit, currency)
            customer.save(update_fields=["credit_balance"])
        payment.ledger_entry = _post(payment, plan, to_credit)
        payment.save(update_fields=["status", "ledger_entry"])
    return payment


def _post(payment: Payment, plan: list[tuple[Invoice, Decimal]], to_credit: Decimal) -> Any:
    """Cash at the payment date's rate, AR at each invoice's issue rate, the difference to
    realized FX gain/loss."""
    currency = payment.currency
    functional = system_settings().functional_currency
    rate = fx_rate_get(base=currency, quote=functional, on_date=payment.received_date)
    accounts = {a.role: a for a in Account.objects.exclude(role=None)}
    cash_f = round_storage(payment.amount.amount * rate)
    ar_f = sum((round_storage(part * (inv.fx_rate or 1)) for inv, part in plan), ZERO)
    credit_f = round_storage(to_credit * rate)
    return journal_post(
        lines=payment_lines(
            currency=currency,
            amount=payment.amount.amount,
            to_invoices=payment.amount_allocated.amount,
            to_credit=to_credit,
            cash_functional=cash_f,
            invoices_functional=ar_f,
            credit_functional=credit_f,
            via_processor=payment.method in PROCESSOR_METHODS,
            accounts=accounts,
        ),
        entry_date=payment.received_date,
        description=f"Payment {payment.pk} from {payment.customer.name}"
        + (f" ({payment.reference})" if payment.reference else ""),
        source=f"billing.payment:{payment.pk}",
        idempotency_key=f"billing.payment:{payment.pk}",
        actor=payment.created_by,
    )
