"""Admin for the reconciliation exceptions queue: the list (kind, account, amount,
difference, age, assignee, status) with filters (assignee "mine"), actions that call the
services (assign to me, resolve with a note, reopen with a reason), the report (CSV/PDF) of
the selected exceptions, and history. Nothing is edited here directly.

Roles: view finance_admin, ar_clerk, ap_clerk, controller, auditor; assign, resolve and
reopen finance_admin, ar_clerk, ap_clerk, controller.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html
from djmoney.money import Money

from core.admin import AuditedAdmin, ReadOnlyAdminMixin, money_display
from core.exceptions import DomainError
from reconciliation.models import ReconciliationException
from reconciliation.services_exceptions import (
    exception_age_days,
    exception_assign,
    exception_reopen,
    exception_resolve,
    exceptions_report_csv,
    exceptions_report_pdf,
)


def _money(amount: Any, currency: str) -> str:
    """``1,234.50 EUR``: minor units, separators, the code after the amount."""
    return money_display(Money(amount, currency)) if amount is not None else "-"


class NoteForm(forms.Form):
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 4, "cols": 60}), max_length=4000)


class AssigneeFilter(admin.SimpleListFilter):
    title = "assignee"
    parameter_name = "assignee"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            ("mine", "Assigned to me"),
            ("none", "Unassigned"),
            ("others", "Assigned to others"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "mine":
            return queryset.filter(assignee_id=request.user.pk)
        if self.value() == "none":
            return queryset.filter(assignee__isnull=True)
        if self.value() == "others":
            return queryset.exclude(assignee__isnull=True).exclude(assignee_id=request.user.pk)
        return queryset


@admin.register(ReconciliationException)
class ReconciliationExceptionAdmin(ReadOnlyAdminMixin, AuditedAdmin):
    mine_field = "assignee"
    mine_label = "Assigned to me"
    list_display = ("short_message", "kind", "amount_display", "difference_display",
                    "age_days", "assignee", "status")  # fmt: skip
    list_display_links = ("short_message",)
    list_filter = ("kind", "status", "bank_account", AssigneeFilter)
    list_select_related = ("bank_account", "assignee")
    search_fields = ("message", "key", "resolution_note", "line__counterparty_name",
                     "line__bank_reference")  # fmt: skip
    ordering = ("status", "-detected_at", "-pk")
    readonly_fields = ("kind", "status", "key", "bank_account", "statement", "line",
                       "other_line", "payout", "match", "amount", "difference", "currency",
                       "message", "detected_at", "assignee", "assigned_at", "resolution_note",
                       "resolved_at", "resolved_by")  # fmt: skip
    actions = ("assign_to_me", "resolve_selected", "reopen_selected", "download_csv",
               "download_pdf")  # fmt: skip

    def has_resolve_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("reconciliation.resolve_exception")

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, obj: ReconciliationException) -> str:
        return format_html(
            '<span class="whitespace-nowrap">{}</span>', _money(obj.amount, obj.currency)
        )

    @admin.display(description="difference", ordering="difference")
    def difference_display(self, obj: ReconciliationException) -> str:
        if obj.difference is None:
            return ""
        return _money(obj.difference, obj.currency)

    @admin.display(description="age (days)", ordering="detected_at")
    def age_days(self, obj: ReconciliationException) -> int:
        return exception_age_days(obj)

    @admin.display(description="problem")
    def short_message(self, obj: ReconciliationException) -> str:
        return obj.message if len(obj.message) <= 70 else f"{obj.message[:69]}\u2026"

    def _each(
        self,
        request: HttpRequest,
        queryset: QuerySet[ReconciliationException],
        service: Callable[[ReconciliationException], Any],
        done: str,
    ) -> None:
        ok = 0
        for exc in queryset.order_by("pk"):
            try:
                service(exc)
            except DomainError as error:
                self.message_user(request, f"Exception {exc.pk}: {error.message}", messages.ERROR)
            else:
                ok += 1
        self.message_user(request, f"{ok} {done}.", messages.SUCCESS)

    def _with_note(
        self,
        request: HttpRequest,
        queryset: QuerySet[ReconciliationException],
        *,
        action: str,
        title: str,
        explanation: str,
        label: str,
        button: str,
        apply: Callable[[ReconciliationException, str], Any],
        done: str,
    ) -> HttpResponse | None:
        """An intermediate page asking for the note (or reason), then the service."""
        form = NoteForm(request.POST if "apply_note" in request.POST else None)
        form.fields["note"].label = label
        if form.is_bound and form.is_valid():
            note = form.cleaned_data["note"]
            self._each(request, queryset, lambda exc: apply(exc, note), done)
            return None
        return TemplateResponse(
            request,
            "admin/reconciliation/exception_note.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": title,
                "explanation": explanation,
                "objects": list(queryset.order_by("pk")),
                "action": action,
                "button": button,
                "form": form,
                "action_checkbox_name": ACTION_CHECKBOX_NAME,
            },
        )

    @admin.action(description="Assign to me", permissions=["resolve"])
    def assign_to_me(
        self, request: HttpRequest, queryset: QuerySet[ReconciliationException]
    ) -> None:
        self._each(
            request,
            queryset,
            lambda exc: exception_assign(
                exception_id=exc.pk, assignee_id=request.user.pk, actor=request.user
            ),
            "assigned to you",
        )

    @admin.action(description="Resolve\u2026", permissions=["resolve"])
    def resolve_selected(
        self, request: HttpRequest, queryset: QuerySet[ReconciliationException]
    ) -> HttpResponse | None:
        return self._with_note(
            request,
            queryset,
            action="resolve_selected",
            title="Resolve exceptions",
            explanation="Say how these exceptions were resolved; the note is kept with each.",
            label="Resolution note",
            button="Resolve",
            apply=lambda exc, note: exception_resolve(
                exception_id=exc.pk, note=note, actor=request.user
            ),
            done="resolved",
        )

    @admin.action(description="Reopen\u2026", permissions=["resolve"])
    def reopen_selected(
        self, request: HttpRequest, queryset: QuerySet[ReconciliationException]
    ) -> HttpResponse | None:
        return self._with_note(
            request,
            queryset,
            action="reopen_selected",
            title="Reopen exceptions",
            explanation="Say why these exceptions go back to the queue.",
            label="Reason",
            button="Reopen",
            apply=lambda exc, reason: exception_reopen(
                exception_id=exc.pk, reason=reason, actor=request.user
            ),
            done="reopened",
        )

    def _download(
        self, queryset: QuerySet[ReconciliationException], kind: str, content_type: str
    ) -> HttpResponse:
        filters = {"ids": list(queryset.values_list("pk", flat=True))}
        if kind == "csv":
            content = exceptions_report_csv(filters)
        else:
            content = exceptions_report_pdf(filters, title_filters="selected in the admin")
        response = HttpResponse(content, content_type=content_type)
        stamp = timezone.localdate().isoformat()
        response["Content-Disposition"] = (
            f'attachment; filename="reconciliation-exceptions-{stamp}.{kind}"'
        )
        return response

    @admin.action(description="Download report (CSV)")
    def download_csv(
        self, request: HttpRequest, queryset: QuerySet[ReconciliationException]
    ) -> HttpResponse:
        return self._download(queryset, "csv", "text/csv")

    @admin.action(description="Download report (PDF)")
    def download_pdf(
        self, request: HttpRequest, queryset: QuerySet[ReconciliationException]
    ) -> HttpResponse:
        return self._download(queryset, "pdf", "application/pdf")
