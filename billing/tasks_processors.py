"""Processor background work: thin Celery wrappers around the processor services."""

from __future__ import annotations

from celery import shared_task

from billing.processors import ProcessorUnreachable
from billing.services.processor_payments import processor_attempts_resolve
from billing.services.refunds import stripe_refunds_resolve

__all__ = ["processor_attempts_resolve_task"]


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
