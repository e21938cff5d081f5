"""Business dates inside a window the system settings draw (RELIABILITY B2, issue 11).

A document dated in year 1 or 9999 is a typo, not a business event: it would number an
invoice ``INV-1-000001``, compute thousands of late fees, or raise today's credit balance
from a payment "received" in 9999. Every date a user or an integration gives is checked
here, and date arithmetic (due dates, periods) goes through ``add_days`` so it can never
overflow into a server error.
"""

from __future__ import annotations

from datetime import date, timedelta
from enum import Enum

from django.utils import timezone

from core.exceptions import DomainError
from core.system_settings import system_settings


class DateKind(Enum):
    # An invoice, bill, order or credit note date: may be in the near future.
    DOCUMENT = "document"
    # The day money was received or paid: never after today.
    RECEIVED = "received"


class DateOutOfRange(DomainError):
    code = "date_out_of_range"


def date_window(kind: DateKind, *, today: date | None = None) -> tuple[date, date]:
    """The first and last date a business date of ``kind`` may take."""
    settings = system_settings()
    today = today or timezone.localdate()
    earliest = settings.ledger.books_start_date
    if kind is DateKind.RECEIVED:
        return earliest, today
    return earliest, today + timedelta(days=settings.limits.document_days_ahead)


def date_check(value: date, *, field: str, kind: DateKind = DateKind.DOCUMENT) -> date:
    """``value`` if it lies in the window of ``kind``; DateOutOfRange naming ``field`` if not."""
    earliest, latest = date_window(kind)
    if value < earliest:
        raise DateOutOfRange(
            f"{value.isoformat()} is before the books start ({earliest.isoformat()}).",
            field=field,
            earliest=earliest.isoformat(),
        )
    if value > latest:
        what = "today" if kind is DateKind.RECEIVED else latest.isoformat()
        raise DateOutOfRange(
            f"{value.isoformat()} is after {what}: "
            + (
                "money cannot be received in the future."
                if kind is DateKind.RECEIVED
                else "documents may be dated at most "
                f"{system_settings().limits.document_days_ahead} days ahead."
            ),
            field=field,
            latest=latest.isoformat(),
        )
    return value


def add_days(value: date, days: int, *, field: str = "date") -> date:
    """``value`` plus ``days``, refused with a field error instead of OverflowError."""
    try:
        return value + timedelta(days=days)
    except OverflowError:
        raise DateOutOfRange(
            f"{value.isoformat()} plus {days} days is beyond the calendar.", field=field
        ) from None
