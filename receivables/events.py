"""Receivables' outbound events (``core.events``): disputes opened (saved) and closed
(upheld or rejected, where the state machine makes the change)."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_save
from django_fsm.signals import post_transition

from core.events.services import event_emit
from core.money import round_money
from receivables.models_disputes import Dispute


def dispute_data(dispute: Dispute) -> dict[str, Any]:
    return {
        "id": dispute.pk,
        "invoice": dispute.invoice_id,
        "customer": dispute.customer_id,
        "status": dispute.status,
        "currency": dispute.currency,
        "amount": str(round_money(dispute.amount.amount, dispute.currency)),
        "reason": dispute.reason,
        "stripe_dispute": dispute.stripe_dispute_id,
    }


def _emit(type_: str, dispute: Dispute) -> None:
    # On the invoice: its dispute and its payment events reach an endpoint in order.
    event_emit(
        type=type_, object_type="invoice", object_id=dispute.invoice_id, data=dispute_data(dispute)
    )


def _on_save(sender: Any, instance: Dispute, created: bool, raw: bool = False, **_: Any) -> None:
    if created and not raw:
        _emit("dispute.opened", instance)


def _on_transition(sender: Any, instance: Dispute, name: str, **_: Any) -> None:
    if name in ("uphold", "reject"):
        _emit("dispute.closed", instance)


def connect() -> None:
    post_save.connect(_on_save, sender=Dispute, dispatch_uid="events-dispute-save")
    post_transition.connect(_on_transition, sender=Dispute, dispatch_uid="events-dispute")
