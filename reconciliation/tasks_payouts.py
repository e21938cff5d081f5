"""Celery tasks of reconciliation payouts (reconciliation.tasks imports them for Celery).

The beat schedule runs ``reconciliation.payouts_import`` hourly; each run looks two weeks
back, so a missed run or a payout Stripe itemises late is picked up by the next one.
``reconciliation.paypal_settlements_import`` does the same for PayPal withdrawals.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from celery import shared_task
from django.conf import settings
from django.db import OperationalError

from reconciliation.feeds.errors import FeedError
from reconciliation.services_payouts import PayoutImportResult, payouts_import
from reconciliation.services_settlements import paypal_settlements_import

__all__ = ["payouts_import_task", "paypal_settlements_import_task"]


class _TransientFeedError(Exception):
    """A provider failure worth trying again (rate limited, unavailable)."""


def _imported(run: Callable[..., PayoutImportResult], since: str) -> dict[str, object]:
    """Run an import as the system; a provider failure worth trying again is retried."""
    try:
        result = run(actor=None, since=dt.date.fromisoformat(since) if since else None)
    except FeedError as exc:
        if exc.retryable:
            raise _TransientFeedError(str(exc)) from exc
        raise
    return {
        "fetched": result.fetched,
        "created": result.created,
        "updated": result.updated,
        "unchanged": result.unchanged,
        "exceptions": result.exceptions,
    }


@shared_task(
    name="reconciliation.payouts_import",
    acks_late=True,
    autoretry_for=(OperationalError, _TransientFeedError),
    retry_backoff=60,
    retry_backoff_max=900,
    max_retries=3,
)
def payouts_import_task(*, since: str = "") -> dict[str, object]:
    """Import Stripe payouts as the system. Idempotent: a payout stored before is left as it
    is (its processor status follows Stripe's). Retried with backoff, a bounded number of
    times, for database hiccups and transient provider errors only; a refused key is not.
    Without a Stripe key (a deployment without Stripe) it does nothing."""
    if not settings.STRIPE_SECRET_KEY:
        return {"skipped": "STRIPE_SECRET_KEY is not set"}
    return _imported(payouts_import, since)


@shared_task(
    name="reconciliation.paypal_settlements_import",
    acks_late=True,
    autoretry_for=(OperationalError, _TransientFeedError),
    retry_backoff=60,
    retry_backoff_max=900,
    max_retries=3,
)
def paypal_settlements_import_task(*, since: str = "") -> dict[str, object]:
    """Import PayPal settlements (withdrawals) as the system. Idempotent: a settlement stored
    before keeps its figures. Retried with backoff, a bounded number of times, for database
    hiccups and transient provider errors only. Without PayPal credentials it does nothing."""
    if not (
        getattr(settings, "PAYPAL_CLIENT_ID", "") and getattr(settings, "PAYPAL_CLIENT_SECRET", "")
    ):
        return {"skipped": "PAYPAL_CLIENT_ID or PAYPAL_CLIENT_SECRET is not set"}
    return _imported(paypal_settlements_import, since)
