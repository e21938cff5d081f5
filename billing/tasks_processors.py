"""Processor background work: thin Celery wrappers around the processor services."""

from __future__ import annotations

import smtplib

from celery import shared_task

from billing.processors import ProcessorUnreachable
from billing.services.autopay import (
    autopay_charge,
    autopay_failure_email,
    autopay_run,
    card_expiry_reminders_send,
)
from billing.services.payment_methods import (
    payment_method_processor_detach,
    payment_methods_processor_detach_sweep,
)
from billing.services.processor_payments import processor_attempts_resolve
from billing.services.refunds import stripe_refunds_resolve

__all__ = [
    "autopay_charge_task",
    "autopay_failure_email_task",
    "autopay_run_task",
    "card_expiry_reminders_task",
    "payment_method_processor_detach_task",
    "payment_methods_processor_detach_sweep_task",
    "processor_attempts_resolve_task",
]


@shared_task(name="billing.autopay_charge", acks_late=True, max_retries=0)
def autopay_charge_task(*, invoice_id: int) -> str:
    """After issue: charge the invoice's first autopay try. Safe to repeat (the try is
    claimed and keyed: a redelivery charges nothing twice); the periodic run takes it
    otherwise."""
    return autopay_charge(invoice_id=invoice_id)


@shared_task(name="billing.autopay_run", acks_late=True, max_retries=0)
def autopay_run_task() -> dict[str, object]:
    """Every few minutes (and after a billing run): every autopay try or retry due."""
    result = autopay_run()
    return {"outcomes": result.outcomes, "failures": result.failures}


@shared_task(
    name="billing.autopay_failure_email",
    acks_late=True,
    autoretry_for=(smtplib.SMTPException, ConnectionError, OSError),
    retry_backoff=True,
    max_retries=5,
)
def autopay_failure_email_task(*, autopay_id: int) -> bool:
    """Tell the customer autopay could not pay (once)."""
    return autopay_failure_email(autopay_id=autopay_id)


@shared_task(
    name="billing.processor_attempts_resolve",
    acks_late=True,
    autoretry_for=(ProcessorUnreachable, ConnectionError),
    retry_backoff=True,
    max_retries=3,
)
def processor_attempts_resolve_task() -> dict[str, int]:
    """Scheduled (every 10 minutes): ask the processor what became of every unknown or stale
    pending attempt, and record each success once (RELIABILITY.md F4, F5). Idempotent.
    Stripe intents and PayPal orders are read back (an approved order left uncaptured is
    captured); Coinbase charges are never polled: unpaid at expiry, they are failed.
    Stripe refunds of the last days not booked yet are booked (``refunds_booked``)."""
    return {**processor_attempts_resolve(), **stripe_refunds_resolve()}


@shared_task(name="billing.card_expiry_reminders", acks_late=True, max_retries=0)
def card_expiry_reminders_task() -> dict[str, object]:
    """Daily: remind autopay customers whose default card expires soon (each once)."""
    result = card_expiry_reminders_send()
    return {"sent": len(result.sent), "failures": result.failures}


@shared_task(
    name="billing.payment_method_processor_detach",
    acks_late=True,
    autoretry_for=(ProcessorUnreachable, ConnectionError),
    retry_backoff=True,
    max_retries=5,
)
def payment_method_processor_detach_task(*, payment_method_id: str) -> str:
    """After a card's removal committed: detach it from its Stripe customer. Idempotent (a
    card detached before is not sent again); what the retries miss, the sweep takes."""
    return payment_method_processor_detach(payment_method_id=int(payment_method_id))


@shared_task(name="billing.payment_methods_processor_detach_sweep", acks_late=True, max_retries=0)
def payment_methods_processor_detach_sweep_task() -> dict[str, int]:
    """Hourly: removed Stripe cards not yet detached at Stripe are detached."""
    return payment_methods_processor_detach_sweep()
