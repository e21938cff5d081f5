from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from core.ledger.checks import ledger_check_run


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
