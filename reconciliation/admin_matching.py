"""Admin for matching: the suggestion queue (accept or reject in bulk, through the services),
matches with history, user rules (created through the service, changes with history),
learned counterparties and runs (read-only).

Roles: view finance_admin, ar_clerk, ap_clerk, controller, integration, auditor; accept and
reject finance_admin, ar_clerk, ap_clerk, controller; rules finance_admin, controller.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import unquote
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.text import Truncator
from djmoney.money import Money
from unfold.admin import ModelAdmin, TabularInline
from unfold.decorators import action

from core.admin import HistoryAdmin, ReadOnlyAdminMixin, money_display
from core.admin_confirm import confirm_action
from core.exceptions import DomainError
from reconciliation.enums import MatchStatus, rule_label
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


def amount_money(amount: Decimal | None, currency: str) -> str:
    return money_display(Money(amount, currency)) if amount is not None else "-"


def nowrap(text: str) -> str:
    """An amount kept on one line in a list column."""
    return format_html('<span class="whitespace-nowrap">{}</span>', text)


class MatchLineInline(ReadOnlyAdminMixin, TabularInline):
    model = MatchLine
    hide_title = True  # the row's own text repeated above it adds nothing
    fields = ("line_date", "line_text", "amount_display", "is_live")
    readonly_fields = fields
    extra = 0
    verbose_name = "bank line"
    verbose_name_plural = "Bank lines"

    @admin.display(description="Booked")
    def line_date(self, row: MatchLine) -> Any:
        return row.line.booking_date

    @admin.display(description="Bank text")
    def line_text(self, row: MatchLine) -> str:
        line = row.line
        return " · ".join(x for x in (line.counterparty_name, line.description[:80]) if x)

    @admin.display(description="Amount")
    def amount_display(self, row: MatchLine) -> str:
        return amount_money(row.amount, row.line.currency)


class MatchTargetInline(ReadOnlyAdminMixin, TabularInline):
    model = MatchTarget
    hide_title = True  # the row's own text repeated above it adds nothing
    fields = ("kind", "target", "amount_display")
    readonly_fields = fields
    extra = 0
    verbose_name = "explained by"
    verbose_name_plural = "Explained by"

    @admin.display(description="Document or account")
    def target(self, row: MatchTarget) -> str:
        found: list[Any] = [row.invoice, row.payment, row.payment_run, row.payment_run_item,
                            row.account, row.payout]  # fmt: skip
        return next((str(obj) for obj in found if obj is not None), "-")

    @admin.display(description="Amount")
    def amount_display(self, row: MatchTarget) -> str:
        return amount_money(row.amount, row.match.currency)


class DecisionReasonForm(forms.Form):
    reason = forms.CharField(
        label="Reason",
        required=False,
        max_length=1000,
        help_text="Optional: why the suggestion is wrong (kept in the audit trail).",
        widget=forms.Textarea(attrs={"rows": 2}),
    )


@admin.register(Match)
class MatchAdmin(ReadOnlyAdminMixin, HistoryAdmin):
    """The suggestion queue: filter status = proposed, select, accept or reject, or open one
    and decide on its page (the same services)."""

    search_amount_fields = ("amount",)
    search_amount_either_sign = True

    list_display = ("match_label", "status", "rule_display", "confidence_display",
                    "amount_display", "bank_account", "short_reason")  # fmt: skip
    list_display_links = ("match_label",)
    list_filter = ("status", "rule", "bank_account")
    list_select_related = ("bank_account",)
    search_fields = ("reason", "lines__line__description", "lines__line__counterparty_name")
    ordering = ("-confidence", "pk")
    inlines = (MatchLineInline, MatchTargetInline)
    fieldsets = (
        (None, {"fields": ("status", "rule_display", "confidence_display", "amount_display",
                           "bank_account", "reason", "match_rule", "payment")}),
        ("Record", {"fields": ("run", "created_at", "created_by", "applied_at", "applied_by",
                               "rejected_at", "rejected_by", "undone_at", "undone_by",
                               "undo_reason")}),
    )  # fmt: skip
    readonly_fields = tuple(f for _, o in fieldsets for f in o["fields"])
    actions = ("accept_selected", "reject_selected")
    actions_detail = ("accept_detail", "reject_detail")

    def has_decide_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm("reconciliation.decide_match")

    def get_actions_detail(self, request: HttpRequest, object_id: Any) -> list[Any]:
        proposed = Match.objects.filter(
            pk=unquote(str(object_id)), status=MatchStatus.PROPOSED
        ).exists()
        return super().get_actions_detail(request, object_id) if proposed else []

    @admin.display(description="Match", ordering="pk")
    def match_label(self, match: Match) -> str:
        return f"Match {match.pk}"

    @admin.display(description="Found by", ordering="rule")
    def rule_display(self, match: Match) -> str:
        return rule_label(match.rule)

    @admin.display(description="Confidence", ordering="confidence")
    def confidence_display(self, match: Match) -> str:
        return f"{match.confidence:.0%}"

    @admin.display(description="Amount", ordering="amount")
    def amount_display(self, match: Match) -> str:
        return nowrap(amount_money(match.amount, match.currency))

    @admin.display(description="Why")
    def short_reason(self, match: Match) -> str:
        return Truncator(match.reason).chars(60)

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

    @admin.action(description="Accept selected suggestions…", permissions=["decide"])
    def accept_selected(
        self, request: HttpRequest, queryset: QuerySet[Match]
    ) -> HttpResponse | None:
        """Accepting posts: first a page listing the selection, then its button."""
        if "confirm" in request.POST:
            self._each(request, queryset, match_accept, "accepted")
            return None
        matches = list(queryset.select_related("bank_account").order_by("pk"))
        count = len(matches)
        return TemplateResponse(
            request,
            "admin/reconciliation/match/accept_selected.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": f"Accept {count} suggested match{'es' if count != 1 else ''}",
                "button": "Accept and post",
                "rows": [
                    {
                        "pk": m.pk,
                        "label": f"Match {m.pk}",
                        "amount": amount_money(m.amount, m.currency),
                        "found_by": f"{rule_label(m.rule)} ({m.confidence:.0%})",
                        "reason": m.reason,
                    }
                    for m in matches
                ],
                "action_checkbox_name": ACTION_CHECKBOX_NAME,
                "cancel_url": request.get_full_path(),
            },
        )

    @admin.action(description="Reject selected suggestions", permissions=["decide"])
    def reject_selected(self, request: HttpRequest, queryset: QuerySet[Match]) -> None:
        self._each(request, queryset, match_reject, "rejected")

    def _match(self, request: HttpRequest, object_id: str) -> Match:
        match = self.get_object(request, unquote(object_id))
        if match is None:
            raise Http404
        return match

    def _summary(self, match: Match) -> list[tuple[str, str]]:
        lines = ", ".join(
            f"{row.line.booking_date:%Y-%m-%d} {amount_money(row.amount, match.currency)}"
            for row in match.lines.select_related("line").order_by("pk")
        )
        return [
            ("Bank account", str(match.bank_account)),
            ("Amount", amount_money(match.amount, match.currency)),
            ("Found by", f"{rule_label(match.rule)} ({match.confidence:.0%})"),
            ("Why", match.reason),
            ("Bank lines", lines or "-"),
        ]

    @action(description="Accept…", url_path="accept", permissions=["decide"])
    def accept_detail(self, request: HttpRequest, object_id: str) -> HttpResponse:
        match = self._match(request, object_id)
        url = reverse("admin:reconciliation_match_change", args=[match.pk])
        return confirm_action(
            request,
            admin_site=self.admin_site,
            opts=self.model._meta,
            obj=match,
            title=f"Accept suggested match {match.pk}",
            button="Accept and post",
            perform=lambda form: match_accept(match_id=match.pk, actor=request.user),
            preview=lambda form: match_accept(match_id=match.pk, actor=request.user),
            summary=self._summary(match),
            warning="Accepting records what the bank line pays and posts it; only undoing "
            "the match (a reversing entry) takes it back.",
            done_url=url,
            cancel_url=url,
            success=f"Match {match.pk} accepted and posted.",
        )

    @action(description="Reject…", url_path="reject", permissions=["decide"])
    def reject_detail(self, request: HttpRequest, object_id: str) -> HttpResponse:
        match = self._match(request, object_id)
        url = reverse("admin:reconciliation_match_change", args=[match.pk])
        return confirm_action(
            request,
            admin_site=self.admin_site,
            opts=self.model._meta,
            obj=match,
            title=f"Reject suggested match {match.pk}",
            button="Reject the suggestion",
            perform=lambda form: match_reject(
                match_id=match.pk,
                actor=request.user,
                reason=form.cleaned_data["reason"] if form is not None else "",
            ),
            summary=[
                *self._summary(match),
                (
                    "What it does",
                    "The bank lines are unmatched again and this pairing is never suggested "
                    "again. Nothing is posted to the ledger.",
                ),
            ],
            form_class=DecisionReasonForm,
            done_url=url,
            cancel_url=url,
            success=f"Match {match.pk} rejected; its bank lines are unmatched again.",
            danger=True,
        )


@admin.register(MatchRule)
class MatchRuleAdmin(HistoryAdmin):
    list_display = ("name", "priority", "condition", "sign", "account", "is_active")
    list_filter = ("is_active", "sign")
    fields = ("name", "priority", "bank_account", "text_contains", "counterparty_name_equals",
              "counterparty_account_equals", "amount_min", "amount_max", "sign", "account",
              "is_active")  # fmt: skip

    search_fields = ("name", "text_contains", "counterparty_name_equals")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # deactivate instead: matches keep pointing at their rule

    @admin.display(description="Matches lines where")
    def condition(self, rule: MatchRule) -> str:
        parts = []
        if rule.text_contains:
            parts.append(f"the text contains \u201c{rule.text_contains}\u201d")
        if rule.counterparty_name_equals:
            parts.append(f"the counterparty is {rule.counterparty_name_equals}")
        if rule.counterparty_account_equals:
            parts.append(f"the counterparty account is {rule.counterparty_account_equals}")
        return Truncator(" and ".join(parts)).chars(70) or "-"

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
    list_display = ("run_label", "bank_account", "status", "auto_matched", "suggested",
                    "unmatched", "finished_at")  # fmt: skip
    list_display_links = ("run_label",)
    list_filter = ("status", "bank_account")
    readonly_fields = ("bank_account", "period_start", "period_end", "status", "auto_matched",
                       "suggested", "unmatched", "error", "attempts", "created_at",
                       "started_at", "finished_at", "requested_by")  # fmt: skip

    @admin.display(description="Run", ordering="pk")
    def run_label(self, run: ReconciliationRun) -> str:
        return f"Run {run.pk}"
