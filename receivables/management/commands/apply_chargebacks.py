from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from receivables.services.disputes import chargeback_events_apply


class Command(BaseCommand):
    help = "Apply the stored Stripe charge.dispute.* webhook events not applied yet."

    def handle(self, *args: Any, **options: Any) -> None:
        run = chargeback_events_apply()
        self.stdout.write(f"Chargeback events applied: {run.applied}.")
        for event_id, error in run.failures.items():
            self.stderr.write(f"Event {event_id}: {error}")
