from __future__ import annotations

from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from billing.services.billing_run import billing_run


class Command(BaseCommand):
    help = "Invoice every subscription period that has ended (the daily billing run)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--as-of", type=date.fromisoformat, help="YYYY-MM-DD (default today)")

    def handle(self, *args: Any, as_of: date | None = None, **options: Any) -> None:
        result = billing_run(as_of=as_of)
        self.stdout.write(
            f"Billing run as of {result.as_of.isoformat()}: "
            f"{len(result.invoices)} invoice(s) issued."
        )
        for subscription_id, message in sorted(result.failures.items()):
            self.stdout.write(self.style.ERROR(f"Subscription {subscription_id}: {message}"))
