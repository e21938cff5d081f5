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


def paged(serializer: Any) -> Any:
    """The schema of a paginated list of ``serializer`` (a class or an instance): what every
    list operation answers, ``{count, next, previous, results}``, for ``extend_schema``."""
    from drf_spectacular.utils import inline_serializer
    from rest_framework import serializers

    from core.api.schema import PAGED_LIST

    cls = serializer if isinstance(serializer, type) else type(serializer)
    name = cls.__name__.removesuffix("Serializer").removesuffix("Output")
    page = inline_serializer(
        name=f"Paginated{name}List",
        fields={
            "count": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": cls(many=True),
        },
    )
    setattr(page, PAGED_LIST, True)  # its operation is named a list (core.api.schema)
    return page
