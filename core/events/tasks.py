"""Sending outbound events: after each commit that wrote some, and every 15 seconds for the
retries that come due (and anything a lost queue message left)."""

from __future__ import annotations

from celery import shared_task

from core.events.services import deliveries_send_due


@shared_task(name="events.send", acks_late=True, max_retries=0, ignore_result=True)
def events_send() -> dict[str, int]:
    """Send what is due for about 50 seconds at most. Safe to run on several workers at once:
    each claims different deliveries."""
    result = deliveries_send_due()
    return {"delivered": result.delivered, "failed": result.failed, "gave_up": result.gave_up}
