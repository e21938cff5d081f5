from __future__ import annotations

from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from receivables.services.collections import collections_run


class Command(BaseCommand):
    help = (
        "The daily collections run (dunning steps and late fees), synchronously. "
        "--dry-run lists what it would do and changes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--as-of", type=date.fromisoformat, help="YYYY-MM-DD (default today)")
        parser.add_argument("--dry-run", action="store_true", help="list actions, write nothing")

    def handle(
        self, *args: Any, as_of: date | None = None, dry_run: bool = False, **options: Any
    ) -> None:
        result = collections_run(as_of=as_of, dry_run=dry_run)
        verb = "would do" if dry_run else "did"
        self.stdout.write(
            f"Collections run as of {result.as_of.isoformat()}"
            f"{' (dry run)' if dry_run else ''}: {result.invoices_seen} invoice(s) checked, "
            f"{verb} {len(result.actions)} action(s)."
        )
        for action in result.actions:
            amount = f" {action.amount}" if action.amount else ""
            self.stdout.write(f"  {action.invoice_number}: {action.description}{amount}")
        for invoice_id, message in sorted(result.failures.items()):
            self.stdout.write(self.style.ERROR(f"Invoice {invoice_id}: {message}"))
        if result.failures:
            raise CommandError(f"{len(result.failures)} invoice(s) failed.")
