"""``manage.py kpis_backfill --from 2026-01-01 [--to 2026-06-30]``: the daily KPI snapshots of
past days, each computed as of its own day from the ledger and the documents.

Idempotent: a day already stored keeps its rows; running it twice writes the same rows."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from reporting.kpis import kpi_snapshot_take

# No backfill spans more than this: a typo in a year should not start a century of work.
MAX_DAYS = 366 * 20


def _day(value: str, name: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--{name} must be a date as YYYY-MM-DD, not {value!r}.") from None


class Command(BaseCommand):
    help = "Store the daily KPI snapshots of past days (each as of its day); idempotent."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--from", dest="date_from", required=True, help="YYYY-MM-DD")
        parser.add_argument("--to", dest="date_to", help="YYYY-MM-DD; today when omitted")

    def handle(self, *args: Any, **options: Any) -> None:
        start = _day(options["date_from"], "from")
        end = _day(options["date_to"], "to") if options["date_to"] else timezone.localdate()
        if start > end:
            raise CommandError("--from must not be after --to.")
        if (end - start).days > MAX_DAYS:
            raise CommandError("The range is longer than 20 years; backfill it in parts.")
        created = 0
        day = start
        while day <= end:
            created += kpi_snapshot_take(as_of=day)
            day += timedelta(days=1)
        days = (end - start).days + 1
        self.stdout.write(f"{days} day(s) from {start} to {end}: {created} new snapshot row(s).")
