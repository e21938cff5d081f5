"""Diagnostic tasks: operators run them to check that the workers keep their promises.

``core.diagnostics_fail`` shows that a failing task stops after a bounded number of attempts
and is reported (RELIABILITY.md F3); ``core.diagnostics_slow_effect`` shows that a task whose
worker is killed mid-run is run again with one effect (F1, F2). Both write only to their own
diagnostic tables, never to business state.
"""

from __future__ import annotations

import time

from celery import Task, shared_task
from django.db.models import F
from django.utils import timezone

from core.models import DiagnosticEffect

MAX_SLEEP_SECONDS = 600.0


class DiagnosticTransientError(ConnectionError):
    """Raised on purpose by ``core.diagnostics_fail``; transient, so the task retries."""


def _attempt_start(key: str) -> None:
    DiagnosticEffect.objects.bulk_create([DiagnosticEffect(key=key)], ignore_conflicts=True)
    DiagnosticEffect.objects.filter(key=key).update(attempts=F("attempts") + 1)


def _sleep(seconds: float) -> None:
    if not 0 <= seconds <= MAX_SLEEP_SECONDS:
        raise ValueError(f"sleep between 0 and {MAX_SLEEP_SECONDS} seconds, not {seconds}")
    time.sleep(seconds)


@shared_task(name="core.diagnostics_fail", bind=True, max_retries=3)
def diagnostics_fail_task(self: Task, *, key: str) -> None:
    """Always fails with a transient error and retries a moment later, ``max_retries`` times;
    then gives up, which leaves one failed ``TaskFailure`` row. Counts its attempts under
    ``key`` in ``DiagnosticEffect``."""
    _attempt_start(key)
    attempt = self.request.retries + 1
    try:
        raise DiagnosticTransientError(f"diagnostic failure on purpose (attempt {attempt})")
    except DiagnosticTransientError as exc:
        raise self.retry(exc=exc, countdown=0.2) from exc


@shared_task(name="core.diagnostics_slow_effect", max_retries=0)
def diagnostics_slow_effect_task(
    *, key: str, seconds_before: float = 0.0, seconds_after: float = 0.0
) -> bool:
    """Sleeps, applies its effect once per ``key`` (a rerun finds it applied and does nothing),
    sleeps again and counts the finished run. Returns whether this run applied the effect."""
    _attempt_start(key)
    _sleep(seconds_before)
    applied = DiagnosticEffect.objects.filter(key=key, applied_at__isnull=True).update(
        applied_at=timezone.now()
    )
    _sleep(seconds_after)
    DiagnosticEffect.objects.filter(key=key).update(completions=F("completions") + 1)
    return applied == 1
