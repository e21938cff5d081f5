"""Payment plans background work: a thin Celery wrapper around the daily plans run."""

from __future__ import annotations

from datetime import date

from celery import shared_task

from receivables.services.payment_plans import payment_plans_run


@shared_task(name="receivables.payment_plans_run", acks_late=True, max_retries=0)
def payment_plans_run_task(*, as_of: str | None = None) -> dict[str, object]:
    """Daily: installment reminders, automatic charges and their retries, overdue marks and
    defaults. Safe to repeat or redeliver: one reminder per installment and one charge per
    (installment, try) (unique constraints and the processor's idempotency key), states only
    move forward."""
    result = payment_plans_run(as_of=date.fromisoformat(as_of) if as_of else None)
    return {
        "as_of": result.as_of.isoformat(),
        "reminders": len(result.reminders),
        "charges": len(result.charges),
        "overdue": len(result.overdue),
        "defaulted": len(result.defaulted),
        "failures": {str(k): v for k, v in result.failures.items()},
    }
