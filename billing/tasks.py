"""Billing background work: thin Celery wrappers around the document services.

Names are stable (queued messages refer to them); arguments are primitive (ids as strings).
Each task is idempotent, so an at-least-once delivery or a retry never renders or sends twice.
"""

from __future__ import annotations

import smtplib
from datetime import date

from celery import shared_task

from billing.documents import invoice_email_send, invoice_pdf_store
from billing.services.billing_run import billing_run

# Transient failures only: the mail server or the file storage being unreachable.
RETRY_OPTIONS = {
    "acks_late": True,
    "autoretry_for": (smtplib.SMTPException, ConnectionError, OSError),
    "retry_backoff": True,
    "max_retries": 5,
}


@shared_task(name="billing.billing_run", acks_late=True, max_retries=0)
def billing_run_task(*, as_of: str | None = None) -> dict[str, object]:
    """Daily: bill every subscription period that has ended. Safe to repeat: a redelivered
    or concurrent run bills nothing twice (one invoice per subscription and period)."""
    result = billing_run(as_of=date.fromisoformat(as_of) if as_of else None)
    return {
        "as_of": result.as_of.isoformat(),
        "invoices": len(result.invoices),
        "failures": result.failures,
    }


@shared_task(name="billing.invoice_deliver", **RETRY_OPTIONS)
def invoice_deliver_task(*, invoice_id: str) -> bool:
    """After issue: store the PDF, then email it. Returns whether an email was sent."""
    invoice_pdf_store(invoice_id=invoice_id)
    return invoice_email_send(invoice_id=invoice_id)


@shared_task(name="billing.invoice_render_pdf", **RETRY_OPTIONS)
def invoice_render_pdf_task(*, invoice_id: str) -> str:
    """Store the invoice PDF if it is not stored yet; returns its SHA-256."""
    return invoice_pdf_store(invoice_id=invoice_id).pdf_sha256


@shared_task(name="billing.invoice_send_email", **RETRY_OPTIONS)
def invoice_send_email_task(*, invoice_id: str, force: bool = False) -> bool:
    """Email the invoice (once; again only with ``force``). Returns whether it was sent."""
    return invoice_email_send(invoice_id=invoice_id, force=force)


from billing.tasks_processors import *  # noqa: E402, F403


@shared_task(name="billing.invoices_overdue_announce", acks_late=True, max_retries=0)
def invoices_overdue_announce_task() -> int:
    """Hourly: ``invoice.overdue`` for invoices that became overdue (once each)."""
    from billing.services.overdue import invoices_overdue_announce

    return invoices_overdue_announce()
