"""A change-list paginator that does not count a million rows to show one page.

On PostgreSQL the planner's row estimate of the list query (``EXPLAIN (FORMAT JSON)``: for
an unfiltered list that is ``pg_class.reltuples`` scaled to the table's current size) is
read first; when it is above ``ADMIN_ESTIMATED_COUNT_THRESHOLD`` (100,000 unless the
settings say otherwise) the list shows that estimate, rounded and worded as one ("about
1,000,000"), instead of running ``COUNT(*)``. Below it, and on any other database, the count
is exact. Used with ``show_full_result_count = False`` so no second count runs either.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.exceptions import EmptyResultSet
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import QuerySet
from django.utils.functional import cached_property

DEFAULT_THRESHOLD = 100_000


class EstimatedCount(int):
    """A row count the planner estimated: an ``int`` for paging arithmetic, shown as
    "about 1,000,000" (two significant digits) wherever a template prints it."""

    def __str__(self) -> str:
        digits = len(str(int(self)))
        rounded = round(int(self), -max(digits - 2, 0))
        return f"about {rounded:,}"

    __repr__ = __str__


def estimated_rows(queryset: QuerySet[Any]) -> int | None:
    """The planner's row estimate for ``queryset`` on PostgreSQL; None elsewhere."""
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return None
    try:
        sql, params = queryset.order_by().values("pk").query.sql_with_params()
    except EmptyResultSet:  # a filter that can match nothing (pk__in=[]): no query to plan
        return 0
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str | bytes):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


class EstimatedCountPaginator(Paginator):
    """``count`` is the planner's estimate when that is above the threshold, else exact."""

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if isinstance(queryset, QuerySet) and not queryset.query.is_sliced:
            threshold = getattr(settings, "ADMIN_ESTIMATED_COUNT_THRESHOLD", DEFAULT_THRESHOLD)
            estimate = estimated_rows(queryset)
            if estimate is not None and estimate > threshold:
                return EstimatedCount(estimate)
        return super().count
