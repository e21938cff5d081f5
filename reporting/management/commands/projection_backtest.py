"""Replay the cash-flow projection from a past date against the cash that really moved."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from core.money import format_amount, round_money
from reporting.projection import projection_backtest


def _text(value: Decimal | None, currency: str) -> str:
    return "-" if value is None else f"{round_money(value, currency):f}"


class Command(BaseCommand):
    help = (
        "Back-test the cash-flow projection: project from --from with only what was known "
        "then, and print per week the projected and actual net cash flow and the error."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--from", dest="as_of", required=True, type=date.fromisoformat, help="YYYY-MM-DD"
        )
        parser.add_argument("--weeks", type=int, default=13, help="1 to 52 (default 13)")
        parser.add_argument("--currency", default=None, help="ISO 4217 (default: every one)")

    def handle(
        self, *args: Any, as_of: date, weeks: int, currency: str | None, **options: Any
    ) -> None:
        if not 1 <= weeks <= 52:
            raise CommandError("--weeks must be between 1 and 52.")
        if as_of >= timezone.localdate():
            raise CommandError("--from must be a past date: nothing has happened after it yet.")
        results = projection_backtest(
            as_of=as_of, weeks=weeks, currency=currency.upper() if currency else None
        )
        if not results:
            self.stdout.write("Nothing to back-test: no cash, invoices or bills in any currency.")
        for result in results:
            cur = result.currency
            self.stdout.write(
                f"{cur} from {as_of.isoformat()} "
                f"(opening cash {format_amount(result.opening_cash, cur)})"
            )
            self.stdout.write(
                f"{'week':>4}  {'start':<10}  {'projected':>16}  {'actual':>16}  {'error':>16}"
            )
            for w in result.weeks:
                self.stdout.write(
                    f"{w.week:>4}  {w.start_date.isoformat():<10}  "
                    f"{_text(w.projected, cur):>16}  {_text(w.actual, cur):>16}  "
                    f"{_text(w.error, cur):>16}"
                )
            mae = result.mean_absolute_error
            self.stdout.write(f"Mean absolute error: {_text(mae, cur)} {cur}")
