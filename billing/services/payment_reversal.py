"""Reversing a payment recorded in error (a bank line matched to the wrong customer): its
allocations come off the invoices, which open again, what it left as credit comes off the
credit balance, and its ledger entry is reversed. Refunds are another thing (money going
back out): a payment with refunds is not reversed."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone
from djmoney.money import Money

from billing.enums import InvoiceStatus, PaymentStatus
from billing.models import Customer, Invoice, Payment, PaymentAllocation, Refund
from core.exceptions import Conflict, NotFound, PermissionDeniedError
from core.ledger.services import journal_reverse

ZERO = Decimal(0)
REVERSED = "reversed"


def payment_reverse(
    *, actor: Any, payment_id: int, reason: str, authorized_by_caller: bool = False
) -> Payment:
    """Undo a succeeded payment exactly: invoices' amounts due and statuses, the customer's
    credit balance and the ledger (a reversing entry dated today) as if it had not been
    recorded. The payment row stays, marked ``failure_code = "reversed"`` with the reason,
    and its allocations are removed. All or nothing; a payment is reversed once.
    ``authorized_by_caller``: reconciliation undoing its own match checked its permission."""
    if not authorized_by_caller and (actor is None or not actor.has_perm("billing.record_payment")):
        raise PermissionDeniedError("Your role does not allow reversing payments.")
    if not reason.strip():
        raise Conflict("A reversal needs a reason.", code="reason_required")
    with transaction.atomic():
        payment = Payment.objects.filter(pk=payment_id).first()
        if payment is None:
            raise NotFound(f"No payment {payment_id}.")
        # Customer first, then the payment and invoices: the order payment_record locks in.
        customer = Customer.objects.select_for_update().get(pk=payment.customer_id)
        payment = Payment.objects.select_for_update().get(pk=payment_id)
        if payment.failure_code == REVERSED:
            raise Conflict(f"Payment {payment.pk} is reversed already.", code="already_reversed")
        if payment.status != PaymentStatus.SUCCEEDED or payment.ledger_entry_id is None:
            raise Conflict(
                f"Payment {payment.pk} is {payment.status}; only a posted payment is reversed.",
                code="payment_not_reversible",
            )
        if Refund.objects.filter(payment=payment).exists():
            raise Conflict(
                f"Payment {payment.pk} has refunds; reverse those first.", code="payment_refunded"
            )
        currency = payment.currency
        allocations = list(PaymentAllocation.objects.filter(payment=payment).order_by("pk"))
        invoices = {
            i.pk: i
            for i in Invoice.objects.select_for_update()
            .filter(pk__in=[a.invoice_id for a in allocations])
            .order_by("pk")
        }
        for allocation in allocations:
            invoice = invoices[allocation.invoice_id]
            invoice.amount_paid = invoice.amount_paid - allocation.amount
            if invoice.status == InvoiceStatus.PAID:
                invoice.reopen()
            invoice.save(update_fields=["amount_paid", "status", "closed_at"])
        to_credit = payment.amount.amount - payment.amount_allocated.amount
        if to_credit > 0:
            if customer.credit_balance.amount < to_credit:
                raise Conflict(
                    f"The {to_credit} {currency} this payment left as credit has been used.",
                    code="credit_used",
                )
            customer.credit_balance = customer.credit_balance - Money(to_credit, currency)
            customer.save(update_fields=["credit_balance"])
        PaymentAllocation.objects.filter(payment=payment).delete()
        journal_reverse(
            entry_id=payment.ledger_entry_id,
            actor=actor if getattr(actor, "pk", None) else None,
            reason=f"Payment {payment.pk} reversed: {reason}"[:500],
            entry_date=timezone.localdate(),
            authorized_by_caller=True,
        )
        payment.amount_allocated = Money(ZERO, currency)
        payment.failure_code = REVERSED
        payment.failure_message = reason[:500]
        payment.save(update_fields=["amount_allocated", "failure_code", "failure_message"])
    return payment
