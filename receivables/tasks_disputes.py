"""Chargebacks: applies the Stripe ``charge.dispute.*`` events billing stored."""

from __future__ import annotations

from celery import shared_task

from receivables.services.disputes import chargeback_events_apply


@shared_task(name="receivables.chargeback_events_apply", acks_late=True, max_retries=0)
def chargeback_events_apply_task() -> dict[str, object]:
    """Every few minutes. Idempotent: each stored event is applied once (a marker row per
    event), so a redelivered or overlapping run adds nothing."""
    run = chargeback_events_apply()
    return {"applied": run.applied, "failures": run.failures}
