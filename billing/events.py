"""Billing's outbound events (``core.events``): what integrators are told, and when.

State changes are caught where the state machine makes them (django-fsm's
``post_transition``), so every path that issues, pays or voids an invoice, or settles or fails
a payment, reports it, the bulk billing run and payment batches included (they call the
transitions on each row, inside ``events_batch`` so the events are written in one go).
Documents created (refunds, credit notes, subscriptions) are caught when saved. Each event is
written in the transaction of the change.

Data carries the document's figures as strings (exact decimals) and ids; the full document
is read from the API by its id.
"""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_save
from django_fsm.signals import post_transition

from billing.enums import PaymentStatus
from billing.models import CreditNote, Invoice, Payment, ProcessorAttempt, Refund, Subscription
from core.events.services import event_emit
from core.money import round_money


def _money(value: Any) -> str:
    """Exact, to the currency's minor unit: "100.00", "1999" (JPY)."""
    return str(round_money(value.amount, str(value.currency)))


def invoice_data(invoice: Invoice) -> dict[str, Any]:
    return {
        "id": invoice.pk,
        "number": invoice.number,
        "customer": invoice.customer_id,
        "subscription": invoice.subscription_id,
        "status": invoice.status,
        "currency": invoice.currency,
        "total": _money(invoice.total),
        "amount_paid": _money(invoice.amount_paid),
        "amount_due": _money(invoice.amount_due),
        "issue_date": invoice.issue_date,
        "due_date": invoice.due_date,
    }


def payment_data(payment: Payment) -> dict[str, Any]:
    return {
        "id": payment.pk,
        "customer": payment.customer_id,
        "status": payment.status,
        "currency": payment.currency,
        "amount": _money(payment.amount),
        "method": payment.method,
        "reference": payment.reference,
        "received_date": payment.received_date,
        "processor": payment.processor,
        "failure_code": payment.failure_code,
    }


def attempt_data(attempt: ProcessorAttempt) -> dict[str, Any]:
    return {
        "attempt": attempt.pk,
        "customer": attempt.customer_id,
        "invoice": attempt.invoice_id,
        "status": "failed",
        "currency": attempt.currency,
        "amount": _money(attempt.amount),
        "processor": attempt.processor,
        "failure_code": attempt.failure_code,
        "failure_message": attempt.failure_message,
    }


def subscription_data(subscription: Subscription) -> dict[str, Any]:
    return {
        "id": subscription.pk,
        "customer": subscription.customer_id,
        "status": subscription.status,
        "currency": subscription.currency,
        "interval": subscription.interval,
        "current_period_start": subscription.current_period_start,
        "current_period_end": subscription.current_period_end,
        "cancel_at_period_end": subscription.cancel_at_period_end,
        "ended_on": subscription.ended_on,
    }


def subscription_updated(subscription: Subscription) -> None:
    """For services that change a subscription without a state change (prices, quantities,
    cancel at period end)."""
    event_emit(
        type="subscription.updated",
        object_type="subscription",
        object_id=subscription.pk,
        data=subscription_data(subscription),
    )


_INVOICE = {"issue": "invoice.issued", "mark_paid": "invoice.paid", "void": "invoice.voided"}
_PAYMENT = {"succeed": "payment.succeeded", "fail": "payment.failed"}


def _on_transition(sender: Any, instance: Any, name: str, **kwargs: Any) -> None:
    if sender is Invoice and name in _INVOICE:
        event_emit(
            type=_INVOICE[name],
            object_type="invoice",
            object_id=instance.pk,
            data=invoice_data(instance),
        )
    elif sender is Payment and name in _PAYMENT:
        event_emit(
            type=_PAYMENT[name],
            object_type="payment",
            object_id=instance.pk,
            data=payment_data(instance),
        )
    elif sender is ProcessorAttempt and name == "fail":
        # A charge the processor declined: no payment row exists, the attempt stands for it.
        event_emit(
            type="payment.failed",
            object_type="invoice" if instance.invoice_id else "customer",
            object_id=instance.invoice_id or instance.customer_id,
            data=attempt_data(instance),
        )
    elif sender is Subscription:
        event_emit(
            type="subscription.canceled" if name == "cancel" else "subscription.updated",
            object_type="subscription",
            object_id=instance.pk,
            data=subscription_data(instance),
        )


def _on_save(sender: Any, instance: Any, created: bool, raw: bool = False, **kwargs: Any) -> None:
    if not created or raw:
        return
    if sender is Payment and instance.status == PaymentStatus.SUCCEEDED:
        event_emit(
            type="payment.succeeded",
            object_type="payment",
            object_id=instance.pk,
            data=payment_data(instance),
        )
    elif sender is Refund:
        event_emit(
            type="payment.refunded",
            object_type="payment" if instance.payment_id else "customer",
            object_id=instance.payment_id or instance.customer_id,
            data={
                "refund": instance.pk,
                "payment": instance.payment_id,
                "customer": instance.customer_id,
                "currency": instance.currency,
                "amount": _money(instance.amount),
                "reason": instance.reason,
                "refund_date": instance.refund_date,
            },
        )
    elif sender is CreditNote:
        event_emit(
            type="credit_note.issued",
            object_type="invoice",
            object_id=instance.invoice_id,
            data={
                "id": instance.pk,
                "number": instance.number,
                "invoice": instance.invoice_id,
                "customer": instance.customer_id,
                "currency": instance.currency,
                "total": _money(instance.total),
                "reason": instance.reason,
                "issue_date": instance.issue_date,
            },
        )
    elif sender is Subscription:
        event_emit(
            type="subscription.created",
            object_type="subscription",
            object_id=instance.pk,
            data=subscription_data(instance),
        )


def connect() -> None:
    machines: tuple[type[Any], ...] = (Invoice, Payment, ProcessorAttempt, Subscription)
    for machine in machines:
        post_transition.connect(_on_transition, sender=machine, dispatch_uid=f"events-{machine}")
    documents: tuple[type[Any], ...] = (Payment, Refund, CreditNote, Subscription)
    for document in documents:
        post_save.connect(_on_save, sender=document, dispatch_uid=f"events-save-{document}")
