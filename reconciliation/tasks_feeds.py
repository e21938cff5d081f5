"""Celery tasks of reconciliation feeds (reconciliation.tasks imports them for Celery).

Thin wrappers of ``reconciliation.services_feeds``. A provider failure is not a task failure:
the service records it on the feed and its FeedSync, and the next scheduled run tries again.
Retries here are bounded and only for database hiccups (RELIABILITY.md F3); a retried sync
repeats nothing, because a sync's lines and its cursor commit together (F2).
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import OperationalError

from reconciliation.enums import FeedSyncResult
from reconciliation.selectors import feeds_due
from reconciliation.services_feeds import feed_sync

__all__ = ["feed_sync_task", "feeds_sync_task"]

logger = logging.getLogger(__name__)


@shared_task(
    name="reconciliation.feed_sync",
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
)
def feed_sync_task(*, feed_id: str) -> dict[str, object]:
    """Sync one feed now (the schedule's actor: none)."""
    sync = feed_sync(feed_id=int(feed_id))
    return {
        "feed": sync.feed_id,
        "sync": sync.pk,
        "result": sync.result,
        "error_code": sync.error_code,
        "added": sync.added,
    }


@shared_task(
    name="reconciliation.feeds_sync",
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
)
def feeds_sync_task() -> dict[str, object]:
    """Sync every active or failing feed, each on its own: one that fails (even with an
    unexpected error) is logged and the others are still synced."""
    ok: list[int] = []
    failed: list[int] = []
    errors: list[int] = []
    for feed_id in feeds_due():
        try:
            sync = feed_sync(feed_id=feed_id)
        except Exception:
            logger.exception("Bank feed %s could not be synced", feed_id)
            errors.append(feed_id)
            continue
        (ok if sync.result == FeedSyncResult.OK else failed).append(feed_id)
    return {"ok": ok, "failed": failed, "errors": errors}
