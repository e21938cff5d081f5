from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from core.ledger.checks import ledger_check_run
from core.ledger.day_totals import day_totals_compact


@shared_task(
    name="ledger.ledger_check",
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
)
def ledger_check_task() -> dict[str, object]:
    """Nightly: verify the ledger and record the run (read-only but for the run's own row)."""
    run = ledger_check_run()
    return {"run": run.pk, "ok": run.ok, "problems": len(run.problems)}


@shared_task(
    name="ledger.day_totals_compact",
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
)
def day_totals_compact_task() -> dict[str, int]:
    """Nightly: fold each day's totals into one row per account and currency (balances
    unchanged; a rerun folds only what was posted since)."""
    return {"rows_folded": day_totals_compact()}
