"""Pagination for every list, and a helper for lists whose count is already known."""

from __future__ import annotations

from typing import Any

from rest_framework.pagination import PageNumberPagination


class Pagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 500


class CountedQuerySet:
    """A queryset whose count is already known (e.g. from a grouped totals query), so the
    paginator does not scan the table a second time."""

    def __init__(self, qs: Any, count: int) -> None:
        self.qs = qs
        self._count = count

    def count(self) -> int:
        return self._count

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index: Any) -> Any:
        return self.qs[index]
