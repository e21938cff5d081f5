"""Reporting's scheduled work: the daily KPI snapshot, the hourly payment-timing refresh."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError
from django.utils import timezone

from reporting.kpis import kpi_snapshot_take
from reporting.projection import payment_timing_refresh


@shared_task(
    name="reporting.kpi_snapshot",
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
)
def kpi_snapshot_task() -> dict[str, object]:
    """Daily: store today's KPIs. Idempotent: a rerun the same day inserts nothing new and
    replaces nothing."""
    today = timezone.localdate()
    created = kpi_snapshot_take(as_of=today)
    return {"date": today.isoformat(), "created": created}


@shared_task(
    name="reporting.payment_timing_refresh",
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
)
def payment_timing_refresh_task() -> None:
    """Hourly: the customers' payment timing the cash-flow projection reads for today."""
    payment_timing_refresh()
