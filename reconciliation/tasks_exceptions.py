"""Celery tasks of reconciliation exceptions (reconciliation.tasks imports them for Celery)."""

from __future__ import annotations

from datetime import date

from celery import shared_task
from django.db import OperationalError

from reconciliation.services_exceptions import exceptions_detect

__all__ = ["exceptions_detect_task"]


@shared_task(
    name="reconciliation.exceptions_detect",
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
)
def exceptions_detect_task(
    *, bank_account_id: str | None = None, today: str | None = None
) -> dict[str, dict[str, int]]:
    """The daily detection of the exceptions queue (``exceptions_detect``). Idempotent: a
    redelivered or repeated run raises nothing twice and waits for a running one; retried a
    bounded number of times for database hiccups only."""
    result = exceptions_detect(
        bank_account_id=int(bank_account_id) if bank_account_id else None,
        today=date.fromisoformat(today) if today else None,
    )
    return result.as_dict()
