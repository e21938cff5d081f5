"""Payables' outbound events (``core.events``): a bill approved and a payment run paid, where
the state machine makes the change (every path, approval screens and API alike)."""

from __future__ import annotations

from typing import Any

from django_fsm.signals import post_transition

from core.events.services import event_emit
from core.money import round_money
from payables.models.bills import Bill
from payables.models.runs import PaymentRun


def _on_bill(sender: Any, instance: Bill, name: str, **_: Any) -> None:
    if name != "approve":
        return
    event_emit(
        type="bill.approved",
        object_type="bill",
        object_id=instance.pk,
        data={
            "id": instance.pk,
            "vendor": instance.vendor_id,
            "number": instance.number,
            "currency": instance.currency,
            "total": str(round_money(instance.total.amount, instance.currency)),
            "bill_date": instance.bill_date,
            "due_date": instance.due_date,
        },
    )


def _on_run(sender: Any, instance: PaymentRun, name: str, **_: Any) -> None:
    if name != "mark_paid":
        return
    event_emit(
        type="payment_run.paid",
        object_type="payment_run",
        object_id=instance.pk,
        data={
            "id": instance.pk,
            "number": instance.number,
            "currency": instance.currency,
            "total": str(round_money(instance.total.amount, instance.currency)),
            "payment_date": instance.payment_date,
        },
    )


def connect() -> None:
    post_transition.connect(_on_bill, sender=Bill, dispatch_uid="events-bill")
    post_transition.connect(_on_run, sender=PaymentRun, dispatch_uid="events-payment-run")
