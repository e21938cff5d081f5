"""Receivables background work: thin Celery wrappers around the collections services."""

from __future__ import annotations

from datetime import date

from celery import shared_task

from receivables.services.collections import collections_run


@shared_task(name="receivables.collections_run", acks_late=True, max_retries=0)
def collections_run_task(*, as_of: str | None = None) -> dict[str, object]:
    """Daily: dunning steps and late fees due today. Safe to repeat or redeliver: each step
    and fee is recorded once (unique constraints), so a second run adds nothing."""
    result = collections_run(as_of=date.fromisoformat(as_of) if as_of else None)
    return {
        "as_of": result.as_of.isoformat(),
        "invoices": result.invoices_seen,
        "actions": len(result.actions),
        "failures": {str(k): v for k, v in result.failures.items()},
    }


from receivables.tasks_disputes import chargeback_events_apply_task  # noqa: E402, F401
from receivables.tasks_plans import payment_plans_run_task  # noqa: E402, F401
