"""Month-end close (issue 16 section 4): a checklist computed live, a close that locks the
books through the month's last day, and a reopening with a reason.

The ledger does not know the other apps: each registers the checks of its own books
(``register_close_check``, from its ``AppConfig.ready``), as they register their part of a
GDPR request. A check answers for one month with what is missing, and where to see it.

- Closing needs ``ledger.close_month`` (the controller) and every item green: else 409
  ``close_items_red`` naming the red ones. It sets the whole-books period lock through the
  month's last day (never moves a later lock back) and keeps the checklist as it stood.
- Months close in order: an earlier month with postings that is not closed is a red item.
- Reopening needs ``ledger.reopen_month`` (a finance admin) and a reason; it moves the lock
  back to the previous month's last day, and reopens the later months that lock covered.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from core.exceptions import Conflict, DomainError, NotFound, PermissionDeniedError
from core.ledger.models import JournalEntry, LedgerCheckRun, MonthClose, PeriodLock
from core.ledger.selectors import period_lock_date


@dataclass(frozen=True)
class CloseItem:
    """One line of a month's checklist: green (``ok``) or what is missing, and a link."""

    code: str
    title: str
    ok: bool
    detail: str = ""
    link: str = ""


@dataclass(frozen=True)
class CloseCheck:
    code: str
    title: str
    # (first day, last day) -> (green?, what is missing, a link to it)
    check: Callable[[date, date], tuple[bool, str, str]]


_CHECKS: dict[str, CloseCheck] = {}


def register_close_check(check: CloseCheck) -> None:
    _CHECKS[check.code] = check


def month_bounds(period: date) -> tuple[date, date]:
    first = period.replace(day=1)
    return first, first.replace(day=calendar.monthrange(first.year, first.month)[1])


def close_in_force(period: date) -> MonthClose | None:
    return (
        MonthClose.objects.filter(period=period.replace(day=1), reopened_at=None)
        .select_related("closed_by", "period_lock")
        .first()
    )


def _earlier_months_closed(first: date, last: date) -> tuple[bool, str, str]:
    oldest = JournalEntry.objects.order_by("entry_date").values_list("entry_date", flat=True)
    start = oldest.first()
    if start is None or start >= first:
        return True, "", ""
    closed = set(
        MonthClose.objects.filter(period__lt=first, reopened_at=None).values_list(
            "period", flat=True
        )
    )
    with_entries = {
        day.replace(day=1)
        for day in JournalEntry.objects.filter(entry_date__lt=first)
        .dates("entry_date", "month")
        .iterator()
    }
    open_months = sorted(with_entries - closed)
    if not open_months:
        return True, "", ""
    names = ", ".join(f"{month:%Y-%m}" for month in open_months[:6])
    more = f" and {len(open_months) - 6} more" if len(open_months) > 6 else ""
    return False, f"Close {names}{more} first.", "/admin/ledger/monthclose/"


def _ledger_checked(first: date, last: date) -> tuple[bool, str, str]:
    run = LedgerCheckRun.objects.exclude(finished_at=None).order_by("-started_at").first()
    link = "/admin/ledger/ledgercheckrun/"
    if run is None or timezone.localdate(run.started_at) <= last:
        return False, "Run the ledger check after the month's end (manage.py ledger_check).", link
    if not run.ok:
        return False, f"The last ledger check found {len(run.problems)} problem(s).", link
    return True, "", ""


register_close_check(
    CloseCheck(
        "earlier_months_closed", "Earlier months with postings are closed", _earlier_months_closed
    )
)
register_close_check(
    CloseCheck("ledger_check", "Ledger and sub-ledger checks are clean", _ledger_checked)
)


# One close or reopening at a time (PostgreSQL advisory lock; SQLite has one writer).
CLOSE_LOCK_KEY = 0x636C6F73  # "clos"


def _one_at_a_time() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CLOSE_LOCK_KEY])


def close_checklist(period: date) -> list[CloseItem]:
    """Every registered check for the month, computed now."""
    first, last = month_bounds(period)
    items = []
    for check in _CHECKS.values():
        ok, detail, link = check.check(first, last)
        items.append(CloseItem(check.code, check.title, ok, detail, link))
    return items


def last_ended_month() -> date:
    """The first day of the newest month that has ended."""
    return (timezone.localdate().replace(day=1) - timedelta(days=1)).replace(day=1)


def _month(period: date) -> date:
    first = period.replace(day=1)
    if first > last_ended_month():
        raise DomainError(
            f"{first:%Y-%m} has not ended yet: a month is closed after its last day.",
            code="month_not_ended",
            field="period",
        )
    return first


def month_close(*, actor: Any, period: date) -> MonthClose:
    """Close the month when every item is green: lock the books through its last day."""
    if actor is None or not actor.has_perm("ledger.close_month"):
        raise PermissionDeniedError("Your role does not allow closing a month.")
    first = _month(period)
    _, last = month_bounds(first)
    with transaction.atomic():
        _one_at_a_time()
        if close_in_force(first) is not None:
            raise Conflict(f"{first:%Y-%m} is already closed.", code="month_already_closed")
        items = close_checklist(first)
        red = [item for item in items if not item.ok]
        if red:
            raise Conflict(
                f"{first:%Y-%m} cannot be closed: "
                + "; ".join(f"{item.title}: {item.detail}" for item in red),
                code="close_items_red",
                items=[asdict(item) for item in red],
            )
        locked = period_lock_date()
        lock = None
        if locked is None or locked < last:
            lock = PeriodLock.objects.create(
                lock_date=last, reason=f"Month-end close of {first:%Y-%m}", created_by=actor
            )
        return MonthClose.objects.create(
            period=first,
            closed_by=actor,
            checklist=[asdict(item) for item in items],
            period_lock=lock,
        )


def month_reopen(*, actor: Any, period: date, reason: str) -> MonthClose:
    """Reopen a closed month (and the later closed months its lock covered)."""
    if actor is None or not actor.has_perm("ledger.reopen_month"):
        raise PermissionDeniedError("Your role does not allow reopening a month.")
    reason = (reason or "").strip()
    if not reason:
        raise DomainError(
            "Reopening a month needs a reason.", code="reason_required", field="reason"
        )
    first = period.replace(day=1)
    with transaction.atomic():
        _one_at_a_time()
        close = close_in_force(first)
        if close is None:
            raise NotFound(f"{first:%Y-%m} is not closed.")
        now = timezone.now()
        reopened = MonthClose.objects.filter(period__gte=first, reopened_at=None)
        for row in reopened.select_for_update():
            row.reopened_at = now
            row.reopened_by = actor
            why = reason if row.pk == close.pk else f"with {first:%Y-%m}: {reason}"
            row.reopen_reason = why[:300]
            row._change_reason = f"reopened: {reason}"[:100]  # type: ignore[attr-defined]
            row.save(update_fields=["reopened_at", "reopened_by", "reopen_reason"])
        back_to = first - timedelta(days=1)
        locked = period_lock_date()
        if locked is not None and locked > back_to:
            PeriodLock.objects.create(
                lock_date=back_to,
                reason=f"Reopened {first:%Y-%m}: {reason}"[:300],
                created_by=actor,
            )
        close.refresh_from_db()
        return close


def month_closes() -> Any:
    return MonthClose.objects.select_related("closed_by", "reopened_by").order_by(
        "-period", "-closed_at", "-pk"
    )


def month_close_status(period: date) -> dict[str, Any]:
    """The month as a close screen shows it: closed or not, and its checklist (as it stood
    when closed; computed now while open)."""
    first = period.replace(day=1)
    close = close_in_force(first)
    if close is not None:
        return {"period": first, "closed": True, "close": close, "items": close.checklist}
    return {
        "period": first,
        "closed": False,
        "close": None,
        "items": [asdict(item) for item in close_checklist(first)],
    }
