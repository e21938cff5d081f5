"""Filters and search shared by the payables change lists: "Waiting for me" (the documents
the approvals inbox lists for the signed-in user: the same rule, ``inbox_list``), "Overdue"
for bills, and search by an exact amount."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from payables.enums import BillStatus


class WaitingForMeFilter(admin.SimpleListFilter):
    """Pending documents the current user may decide now, as the approvals inbox has them."""

    title = "approval"
    parameter_name = "waiting"
    kind = ""

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("me", "Waiting for my approval")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() != "me":
            return queryset
        from payables.screens.inbox import inbox_list

        ids = [i.object_id for i in inbox_list(actor=request.user) if i.kind == self.kind]
        if not ids:
            # Not ``pk__in=[]``: the workspace's count estimate compiles the query to SQL,
            # which Django refuses for a filter it knows matches nothing.
            return queryset.filter(pk__isnull=True)
        return queryset.filter(pk__in=ids)


def waiting_for_me(kind: str) -> type[WaitingForMeFilter]:
    return type(f"WaitingForMe{kind.title()}Filter", (WaitingForMeFilter,), {"kind": kind})


class OverdueFilter(admin.SimpleListFilter):
    """Bills past their due date with money still owed."""

    title = "due"
    parameter_name = "due"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("overdue", "Overdue"), ("week", "Due within 7 days")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        today = timezone.localdate()
        unpaid = queryset.filter(
            status__in=(BillStatus.PENDING_APPROVAL, BillStatus.APPROVED, BillStatus.SCHEDULED)
        )
        if self.value() == "overdue":
            return unpaid.filter(due_date__lt=today)
        if self.value() == "week":
            return unpaid.filter(due_date__gte=today, due_date__lte=today + timedelta(days=7))
        return queryset
