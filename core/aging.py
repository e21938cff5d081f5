"""Aging buckets shared by receivables and payables: the bucket of a due date as a database
expression, and per-currency bucket totals from rows grouped by currency and due date."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, timedelta
from decimal import Decimal

from django.db import models
from django.db.models import Case, CharField, Value, When


class AgingBucket(models.TextChoices):
    CURRENT = "current", "Current"
    DAYS_1_30 = "1-30", "1-30 days"
    DAYS_31_60 = "31-60", "31-60 days"
    DAYS_61_90 = "61-90", "61-90 days"
    DAYS_90_PLUS = "90+", "Over 90 days"


BUCKETS = [b.value for b in AgingBucket]
# Upper bound (days past due, inclusive) of each bucket but the last.
_LIMITS = (
    (0, AgingBucket.CURRENT),
    (30, AgingBucket.DAYS_1_30),
    (60, AgingBucket.DAYS_31_60),
    (90, AgingBucket.DAYS_61_90),
)


def aging_bucket(days_past_due: int) -> str:
    for limit, bucket in _LIMITS:
        if days_past_due <= limit:
            return bucket.value
    return AgingBucket.DAYS_90_PLUS.value


def aging_bucket_case(as_of: date, field: str = "due_date") -> Case:
    """The bucket of ``field`` seen from ``as_of``, computed by the database."""
    return Case(
        *(
            When(**{f"{field}__gte": as_of - timedelta(days=limit)}, then=Value(bucket.value))
            for limit, bucket in _LIMITS
        ),
        default=Value(AgingBucket.DAYS_90_PLUS.value),
        output_field=CharField(),
    )


def aging_totals(
    rows: Iterable[tuple[str, date, Decimal, int]], *, as_of: date, bucket: str | None = None
) -> tuple[dict[str, dict[str, Decimal]], int]:
    """Per-currency totals of each bucket and ``total``, and the item count, from rows of
    (currency, due date, amount, items) grouped by the database; only ``bucket`` if given."""
    totals: dict[str, dict[str, Decimal]] = defaultdict(
        lambda: {**{b: Decimal(0) for b in BUCKETS}, "total": Decimal(0)}
    )
    count = 0
    for currency, due_date, amount, n in rows:
        row_bucket = aging_bucket((as_of - due_date).days)
        if bucket and row_bucket != bucket:
            continue
        totals[currency][row_bucket] += amount
        totals[currency]["total"] += amount
        count += n
    return dict(sorted(totals.items())), count
