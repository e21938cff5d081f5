"""Admin for matching: the suggestion queue (accept or reject in bulk, through the services),
matches with history, user rules (created through the service, changes with history),
learned counterparties and runs (read-only).

Roles: view finance_admin, ar_clerk, ap_clerk, controller, integration, auditor; accept and
reject finance_admin, ar_clerk, ap_clerk, controller; rules finance_admin, controller.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from unfold.admin import ModelAdmin, TabularInline

from core.admin import HistoryAdmin, ReadOnlyAdminMixin
from core.exceptions import DomainError
from reconciliation.models import (
    CounterpartyAlias,
    Match,
    MatchLine,
    MatchRule,
    MatchTarget,
    ReconciliationRun,
)
from reconciliation.services_matching import match_accept, match_reject
from reconciliation.services_rules import match_rule_create, match_rule_save


class MatchLineInline(ReadOnlyAdminMixin, TabularInline):
    model = MatchLine
    fields = ("line", "amount", "is_live")
    readonly_fields = fields
    extra = 0


class MatchTargetInline(ReadOnlyAdminMixin, TabularInline):
    model = MatchTarget
    fields = (
        "kind", "invoice", "payment", "payment_run", "payment_run_item", "account", "payout",
        "amount",
    )  # fmt: skip
    readonly_fields = fields
    extra = 0


@admin.register(Match)
class MatchAdmin(ReadOnlyAdminMixin, HistoryAdmin):
    """The suggestion queue: filter status = proposed, select, accept or reject."""

    list_display = ("pk", "bank_account", "status", "confidence", "rule", "amount", "currency",
                    "reason", "created_at")  # fmt: skip
    list_filter = ("status", "rule", "bank_account")
    search_fields = ("reason",)
    ordering = ("-confidence", "pk")
    inlines = (MatchLineInline, MatchTargetInline)
    readonly_fields = ("bank_account", "run", "status", "confidence", "rule", "match_rule",
                       "reason", "amount", "currency", "payment", "created_at", "created_by",
                       "applied_at", "applied_by", "rejected_at", "rejected_by", "undone_at",
                       "undone_by", "undo_reason")  # fmt: skip
    exclude = ("journal_entries",)
    actions = ("accept_selected", "reject_selected")

    def has_decide_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("reconciliation.decide_match")

    def _each(
        self,
        request: HttpRequest,
        queryset: QuerySet[Match],
        service: Callable[..., Any],
        done: str,
    ) -> None:
        ok = 0
        for match in queryset.order_by("pk"):
            try:
                service(match_id=match.pk, actor=request.user)
            except DomainError as exc:
                self.message_user(request, f"Match {match.pk}: {exc.message}", messages.ERROR)
            else:
                ok += 1
        self.message_user(request, f"{ok} {done}.", messages.SUCCESS)

    @admin.action(description="Accept selected suggestions", permissions=["decide"])
    def accept_selected(self, request: HttpRequest, queryset: QuerySet[Match]) -> None:
        self._each(request, queryset, match_accept, "accepted")

    @admin.action(description="Reject selected suggestions", permissions=["decide"])
    def reject_selected(self, request: HttpRequest, queryset: QuerySet[Match]) -> None:
        self._each(request, queryset, match_reject, "rejected")


@admin.register(MatchRule)
class MatchRuleAdmin(HistoryAdmin):
    list_display = ("name", "priority", "text_contains", "counterparty_name_equals", "sign",
                    "account", "bank_account", "is_active")  # fmt: skip
    list_filter = ("is_active", "sign")
    fields = ("name", "priority", "bank_account", "text_contains", "counterparty_name_equals",
              "counterparty_account_equals", "amount_min", "amount_max", "sign", "account",
              "is_active")  # fmt: skip

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # deactivate instead: matches keep pointing at their rule

    def save_model(self, request: HttpRequest, obj: MatchRule, form: Any, change: bool) -> None:
        if change:
            try:
                match_rule_save(actor=request.user, rule=obj)
            except DomainError as exc:
                self.message_user(request, exc.message, messages.ERROR)
            return
        try:
            created = match_rule_create(
                actor=request.user,
                name=obj.name,
                account_id=obj.account_id,
                priority=obj.priority,
                bank_account_id=obj.bank_account_id,
                text_contains=obj.text_contains,
                counterparty_name_equals=obj.counterparty_name_equals,
                counterparty_account_equals=obj.counterparty_account_equals,
                amount_min=obj.amount_min,
                amount_max=obj.amount_max,
                sign=obj.sign,
            )
        except DomainError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return
        obj.pk = created.pk


@admin.register(CounterpartyAlias)
class CounterpartyAliasAdmin(ReadOnlyAdminMixin, HistoryAdmin):
    list_display = ("kind", "key", "customer", "vendor", "confirmations", "taught_by", "taught_at")
    list_filter = ("kind",)
    search_fields = ("key",)


@admin.register(ReconciliationRun)
class ReconciliationRunAdmin(ReadOnlyAdminMixin, ModelAdmin):
    list_display = ("pk", "bank_account", "period_start", "period_end", "status", "auto_matched",
                    "suggested", "unmatched", "created_at", "finished_at")  # fmt: skip
    list_filter = ("status", "bank_account")
    readonly_fields = ("bank_account", "period_start", "period_end", "status", "auto_matched",
                       "suggested", "unmatched", "error", "attempts", "created_at",
                       "started_at", "finished_at", "requested_by")  # fmt: skip
