"""Receivables background work: thin Celery wrappers around the collections services."""

from __future__ import annotations

from datetime import date
from typing import Any

from celery import shared_task
from celery.utils.time import get_exponential_backoff_interval
from django.utils import timezone

from receivables.services.collections import collections_run


class CollectionsRunIncomplete(Exception):
    """Some invoices failed in the run (a mail server down, a lock that timed out). The run
    is tried again with backoff, a bounded number of times, and then reported as a task
    failure (RELIABILITY.md F3); the invoices that went through are not touched again."""


@shared_task(name="receivables.collections_run", bind=True, acks_late=True, max_retries=3)
def collections_run_task(self: Any, *, as_of: str | None = None) -> dict[str, object]:
    """Daily: dunning steps and late fees due today. Safe to repeat or redeliver: each step
    and fee is recorded once (unique constraints), so a second run adds nothing. The day is
    fixed at the first delivery: a retry after midnight still runs the same day's work."""
    day = date.fromisoformat(as_of) if as_of else timezone.localdate()
    result = collections_run(as_of=day)
    if result.failures:
        failed = ", ".join(f"{k}: {v}" for k, v in sorted(result.failures.items())[:5])
        raise self.retry(
            kwargs={"as_of": day.isoformat()},
            exc=CollectionsRunIncomplete(
                f"{len(result.failures)} of {result.invoices_seen} invoices failed on "
                f"{day.isoformat()}: {failed}"
            ),
            countdown=get_exponential_backoff_interval(
                factor=int(self.retry_backoff),
                retries=self.request.retries,
                maximum=self.retry_backoff_max,
                full_jitter=self.retry_jitter,
            ),
        )
    return {
        "as_of": result.as_of.isoformat(),
        "invoices": result.invoices_seen,
        "actions": len(result.actions),
        "failures": {str(k): v for k, v in result.failures.items()},
    }


from receivables.tasks_disputes import chargeback_events_apply_task  # noqa: E402, F401
from receivables.tasks_plans import payment_plans_run_task  # noqa: E402, F401
