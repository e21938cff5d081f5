"""The disputes queue: open and under-review disputes first, with history. Status and money
are read-only; review and resolve go through the services (which check the roles)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.db.models import Case, IntegerField, QuerySet, Value, When
from django.http import HttpRequest
from django.utils.html import format_html
from unfold.admin import ModelAdmin

from core.admin import AuditedAdmin, money_display
from core.exceptions import DomainError
from receivables.models_disputes import ChargebackEvent, Dispute, DisputeStatus
from receivables.services.disputes import REJECTED, UPHELD, dispute_resolve, dispute_review

# Sections other apps add to the dispute page (the portal's messages and files from the
# customer). Receivables may not import those apps, so they register here: a title and a
# function of the dispute returning HTML built with ``format_html`` (escaped), shown
# read-only on the change page to whoever may view the dispute.
DisputePanel = Callable[[Dispute], str]
DISPUTE_PANELS: dict[str, tuple[str, DisputePanel]] = {}


def dispute_panel_register(*, title: str, render: DisputePanel) -> None:
    """Show ``render(dispute)`` under ``title`` on the dispute's admin page (once per title:
    registering again replaces it). A domain error while rendering is shown in its place."""

    @admin.display(description=title)
    def panel(dispute: Dispute) -> str:
        try:
            return render(dispute)
        except DomainError as exc:
            return format_html('<p class="errornote">{}</p>', exc.message)

    DISPUTE_PANELS["panel_" + "_".join(title.lower().split())] = (title, panel)


@admin.register(Dispute)
class DisputeAdmin(AuditedAdmin):
    """Roles: view for finance_admin, controller, ar_clerk, auditor; review for ar_clerk,
    finance_admin, controller; resolve for finance_admin and controller. Opened through the
    API (or a chargeback, or the customer portal, whose messages and files show in a panel);
    never deleted."""

    list_display = (
        "dispute_label",
        "invoice",
        "customer",
        "amount_display",
        "status",
        "opened_at",
        "evidence_due_by",
        "stripe_dispute_id",
    )
    list_filter = ("status", "currency")
    search_fields = ("invoice__number", "customer__name", "stripe_dispute_id")
    readonly_fields = tuple(f.name for f in Dispute._meta.fields)
    actions = ("review_selected", "uphold_selected", "reject_selected")

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        active = Case(
            When(status__in=[DisputeStatus.OPEN, DisputeStatus.UNDER_REVIEW], then=Value(0)),
            default=Value(1),
            output_field=IntegerField(),
        )
        return (
            super()
            .get_queryset(request)
            .select_related("invoice", "customer")
            .annotate(queue=active)
            .order_by("queue", "evidence_due_by", "opened_at")
        )

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = tuple(super().get_readonly_fields(request, obj))
        return fields + tuple(DISPUTE_PANELS) if obj is not None else fields

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        main = [f for f in self.get_fields(request, obj) if f not in DISPUTE_PANELS]
        fieldsets: list[tuple[str | None, dict[str, Any]]] = [(None, {"fields": main})]
        if obj is not None:
            fieldsets += [
                (title, {"fields": (name,)}) for name, (title, _) in DISPUTE_PANELS.items()
            ]
        return fieldsets

    def __getattr__(self, name: str) -> Any:
        # The registered panels are read-only fields of this admin, looked up by name.
        if name in DISPUTE_PANELS:
            return DISPUTE_PANELS[name][1]
        raise AttributeError(name)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_review_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("receivables.review_dispute")

    def has_resolve_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("receivables.resolve_dispute")

    @admin.display(description="Dispute", ordering="pk")
    def dispute_label(self, obj: Dispute) -> str:
        return f"Dispute {obj.pk}"

    @admin.display(description="Amount")
    def amount_display(self, obj: Dispute) -> str:
        return money_display(obj.amount)

    def _each(self, request: HttpRequest, queryset: QuerySet, call: Any, done: str) -> None:
        count = 0
        for dispute in queryset:
            try:
                call(dispute.pk)
                count += 1
            except DomainError as exc:
                self.message_user(request, f"Dispute {dispute.pk}: {exc.message}", messages.ERROR)
        self.message_user(request, f"{count} dispute(s) {done}.", messages.SUCCESS)

    @admin.action(description="Put selected disputes under review", permissions=["review"])
    def review_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._each(
            request,
            queryset,
            lambda pk: dispute_review(actor=request.user, dispute_id=pk),
            "under review",
        )

    @admin.action(description="Resolve selected: upheld (credit note)", permissions=["resolve"])
    def uphold_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._each(
            request,
            queryset,
            lambda pk: dispute_resolve(actor=request.user, dispute_id=pk, outcome=UPHELD),
            "upheld",
        )

    @admin.action(description="Resolve selected: rejected", permissions=["resolve"])
    def reject_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._each(
            request,
            queryset,
            lambda pk: dispute_resolve(actor=request.user, dispute_id=pk, outcome=REJECTED),
            "rejected",
        )


@admin.register(ChargebackEvent)
class ChargebackEventAdmin(ModelAdmin):
    """Roles: view for finance_admin, controller, ar_clerk, auditor. Append-only."""

    list_display = ("webhook_event", "dispute", "applied_at", "outcome")
    readonly_fields = ("webhook_event", "dispute", "applied_at", "outcome")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
