"""Payables background work: thin Celery wrappers. Names are stable, arguments primitive,
and each task is idempotent (a redelivery or retry has one effect)."""

from __future__ import annotations

import smtplib
from datetime import date

from celery import shared_task

from payables.documents import purchase_order_send
from payables.services.runs import payment_runs_process

RETRY_OPTIONS = {
    "acks_late": True,
    "autoretry_for": (smtplib.SMTPException, ConnectionError, OSError),
    "retry_backoff": True,
    "max_retries": 5,
}


@shared_task(name="payables.purchase_order_send", **RETRY_OPTIONS)
def purchase_order_send_task(*, order_id: str) -> bool:
    """After an order is placed: render its PDF and email it to the vendor, once."""
    return purchase_order_send(order_id=order_id)


@shared_task(name="payables.payment_runs_process", acks_late=True, max_retries=0)
def payment_runs_process_task(*, as_of: str | None = None) -> list[str]:
    """Daily: export and pay the approved runs whose payment date has come. Safe to repeat:
    a run is exported and paid once (its state and the ledger entry's key say so)."""
    return payment_runs_process(as_of=date.fromisoformat(as_of) if as_of else None)
