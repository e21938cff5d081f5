"""Reconciliation background work: thin Celery wrappers around the services.

Names are stable (queued messages refer to them); arguments are primitive (ids as strings).
"""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from reconciliation.services_matching import reconciliation_run_execute
from reconciliation.tasks_exceptions import *  # noqa: F403 (registered with Celery)
from reconciliation.tasks_feeds import *  # noqa: F403
from reconciliation.tasks_payouts import *  # noqa: F403


@shared_task(
    name="reconciliation.reconcile_run",
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
)
def reconcile_run_task(*, run_id: str) -> dict[str, object]:
    """Run the matching engine for a queued run. Idempotent: a redelivered task for a run
    that is done does nothing new (RELIABILITY.md F2); a failure is recorded on the run and
    retried a bounded number of times for database hiccups only (F3)."""
    run = reconciliation_run_execute(run_id=int(run_id))
    return {
        "id": run.pk,
        "status": run.status,
        "auto_matched": run.auto_matched,
        "suggested": run.suggested,
        "unmatched": run.unmatched,
    }
