"""Admin screens for the reconciliation report, period sign-off (and reopening) and the
reconciliation audit trail. Writes go through ``services_close``; the audit trail is
read-only for everyone."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from djmoney.money import Money
from unfold.admin import ModelAdmin
from unfold.decorators import action

from core.admin import ReadOnlyAdminMixin, money_display
from core.admin_confirm import amount_text, confirm_action
from core.exceptions import DomainError
from reconciliation.enums import rule_label
from reconciliation.models import AuditEvent, BankAccount, SignOff
from reconciliation.selectors_close import reconciliation_report
from reconciliation.services_close import SIGN_OFF, sign_off_create, sign_off_reopen

REPORT_PERMISSIONS = ("reconciliation.view_statement", "reconciliation.view_match")


class ReportForm(forms.Form):
    bank_account = forms.ModelChoiceField(queryset=BankAccount.objects.filter(is_active=True))
    period_start = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    period_end = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))


class SignOffForm(forms.Form):
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class ReopenForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))


@admin.register(SignOff)
class SignOffAdmin(ReadOnlyAdminMixin, ModelAdmin):
    """Roles: view finance_admin, ar_clerk, ap_clerk, controller, auditor; sign off and
    reopen controller (from the report screen and the sign-off's page)."""

    list_display = ("period_label", "bank_account", "statement_display", "book_display",
                    "status", "signed_by", "signed_at")  # fmt: skip
    list_display_links = ("period_label",)
    list_filter = ("status", "bank_account")
    list_select_related = ("bank_account", "signed_by")
    readonly_fields = (
        "bank_account", "period_start", "period_end", "currency", "statement_balance",
        "book_balance", "unexplained", "status", "note", "signed_by", "signed_at",
        "period_lock", "reopened_by", "reopened_at", "reopen_reason",
    )  # fmt: skip
    exclude = ("report",)
    change_list_template = "admin/reconciliation/signoff/change_list.html"
    # The workspace shows list actions above the list (the theme has no object tools).
    actions_list = ("open_report",)
    change_form_template = "admin/reconciliation/signoff/change_form.html"

    def get_urls(self) -> list[Any]:
        return [
            path(
                "report/",
                self.admin_site.admin_view(self.report_view),
                name="reconciliation_signoff_report",
            ),
            path(
                "<int:sign_off_id>/reopen/",
                self.admin_site.admin_view(self.reopen_view),
                name="reconciliation_signoff_reopen",
            ),
            *super().get_urls(),
        ]

    @admin.display(description="Period", ordering="period_end")
    def period_label(self, sign_off: SignOff) -> str:
        return f"{sign_off.period_start:%Y-%m-%d} to {sign_off.period_end:%Y-%m-%d}"

    @admin.display(description="Statement balance")
    def statement_display(self, sign_off: SignOff) -> str:
        return amount_text(sign_off.statement_balance, sign_off.currency)

    @admin.display(description="Book balance")
    def book_display(self, sign_off: SignOff) -> str:
        return amount_text(sign_off.book_balance, sign_off.currency)

    def has_report_permission(self, request: HttpRequest) -> bool:
        return all(request.user.has_perm(p) for p in REPORT_PERMISSIONS)

    @action(
        description="Reconciliation report and sign-off",
        url_path="open-report",
        permissions=["report"],
    )
    def open_report(self, request: HttpRequest) -> HttpResponse:
        return HttpResponseRedirect(reverse("admin:reconciliation_signoff_report"))

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        sign_off = SignOff.objects.filter(pk=object_id).first()
        extra = {
            **(extra_context or {}),
            "signed_report": sign_off.report if sign_off else None,
            "can_reopen": request.user.has_perm(SIGN_OFF),
        }
        return super().change_view(request, object_id, form_url, extra)

    def report_view(self, request: HttpRequest) -> HttpResponse:
        """The report for a bank account and period; a controller signs it off from here."""
        if not all(request.user.has_perm(p) for p in REPORT_PERMISSIONS):
            raise PermissionDenied
        form = ReportForm(request.GET or None)
        sign_form = SignOffForm()
        report = None
        error = ""
        if form.is_valid():
            account = form.cleaned_data["bank_account"]
            start, end = form.cleaned_data["period_start"], form.cleaned_data["period_end"]
            if request.method == "POST" and request.user.has_perm(SIGN_OFF):
                return self._sign_off_confirm(request, account, start, end)
            try:
                report = reconciliation_report(
                    bank_account_id=account.pk, period_start=start, period_end=end
                ).as_dict()
            except DomainError as exc:
                error = exc.message
        context = {
            **self.admin_site.each_context(request),
            "title": "Bank reconciliation report",
            "form": form,
            "sign_form": sign_form,
            "report": report,
            "error": error,
            "can_sign_off": request.user.has_perm(SIGN_OFF),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/reconciliation/signoff/report.html", context)

    def _sign_off_confirm(
        self, request: HttpRequest, account: BankAccount, start: date, end: date
    ) -> HttpResponse:
        """The sign-off's confirmation page: the balances it keeps and the lock it sets; the
        period is signed off only from this page's button."""
        back = request.get_full_path()
        summary: list[tuple[str, str]] = [
            ("Bank account", str(account)),
            ("Period", f"{start:%Y-%m-%d} to {end:%Y-%m-%d}"),
        ]
        try:
            report = reconciliation_report(
                bank_account_id=account.pk, period_start=start, period_end=end
            )
        except DomainError:
            report = None
        if report is not None:
            c = report.currency
            summary += [
                ("Statement balance", amount_text(report.statement_balance, c)),
                ("Book balance", amount_text(report.book_balance, c)),
                ("Unexplained difference", amount_text(report.unexplained, c)),
                ("Suggestions waiting", str(report.suggestions_pending)),
            ]
        summary.append(
            (
                "What it does",
                "Keeps this report as signed and locks the bank's ledger account through "
                f"{end:%Y-%m-%d}: no posting, match or undo dated in the period until a "
                "controller reopens it with a reason. Nothing is posted to the ledger.",
            )
        )

        def perform(form: forms.Form | None) -> SignOff:
            return sign_off_create(
                actor=request.user,
                bank_account_id=account.pk,
                period_start=start,
                period_end=end,
                note=form.cleaned_data["note"] if form is not None else "",
            )

        response = confirm_action(
            request,
            admin_site=self.admin_site,
            opts=self.model._meta,
            obj=None,
            title=f"Sign off {account} through {end:%Y-%m-%d}",
            button=f"Sign off through {end:%Y-%m-%d}",
            perform=perform,
            summary=summary,
            warning="A signed-off period cannot be changed: only a controller can reopen it, "
            "and the reopening is kept in the audit trail.",
            form_class=SignOffForm,
            done_url=reverse("admin:reconciliation_signoff_changelist"),
            cancel_url=back,
            success=f"{account} signed off through {end:%Y-%m-%d}; the period is locked.",
        )
        if isinstance(response, HttpResponseRedirect):
            created = SignOff.objects.filter(bank_account=account, period_end=end).order_by("-pk")
            if created.exists():
                return HttpResponseRedirect(
                    reverse("admin:reconciliation_signoff_change", args=[created[0].pk])
                )
        return response

    def reopen_view(self, request: HttpRequest, sign_off_id: int) -> HttpResponse:
        if not request.user.has_perm(SIGN_OFF):
            raise PermissionDenied
        sign_off = get_object_or_404(SignOff, pk=sign_off_id)
        form = ReopenForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                sign_off_reopen(
                    actor=request.user,
                    sign_off_id=sign_off.pk,
                    reason=form.cleaned_data["reason"],
                )
            except DomainError as exc:
                self.message_user(request, f"Not reopened: {exc.message}", messages.ERROR)
            else:
                self.message_user(request, "Period reopened.", messages.SUCCESS)
                return HttpResponseRedirect(
                    reverse("admin:reconciliation_signoff_change", args=[sign_off.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "title": f"Reopen {sign_off}",
            "form": form,
            "sign_off": sign_off,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/reconciliation/signoff/reopen.html", context)


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdminMixin, ModelAdmin):
    """The reconciliation audit trail: who did what, when and why. Read-only for every role
    (on PostgreSQL the table refuses updates and deletes)."""

    list_display = ("at", "action", "actor", "bank_account", "subject", "short_reason")
    list_filter = ("action", "bank_account")
    list_select_related = ("actor", "bank_account")
    search_fields = ("subject", "reason", "actor__username")
    date_hierarchy = "at"
    readonly_fields = (
        "at",
        "action",
        "actor",
        "bank_account",
        "subject",
        "reason",
        "details_display",
    )
    fields = readonly_fields

    @admin.display(description="why")
    def short_reason(self, obj: AuditEvent) -> str:
        return obj.reason[:80]

    @admin.display(description="Details")
    def details_display(self, obj: AuditEvent) -> str:
        """The recorded details in words (rule codes as labels, amounts with their currency),
        and the record itself, as stored, one click away."""
        details = obj.details if isinstance(obj.details, dict) else {}
        currency = str(details.get("currency") or "")
        rows = format_html_join(
            "",
            '<tr><th scope="row" class="pr-4 py-1 text-left font-medium">{}</th>'
            '<td class="py-1">{}</td></tr>',
            (
                (key.replace("_", " ").capitalize(), _detail_text(key, value, currency))
                for key, value in sorted(details.items())
            ),
        )
        raw = json.dumps(obj.details, indent=2, sort_keys=True, default=str)
        return format_html(
            '<table class="audit-details">{}</table>'
            '<details class="mt-2"><summary>The record as stored</summary><pre>{}</pre></details>',
            rows,
            raw,
        )


def _detail_text(key: str, value: Any, currency: str) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if key == "rule":
        return rule_label(str(value))
    if isinstance(value, list):
        return ", ".join(str(item) for item in value) or "-"
    if key == "confidence":
        try:
            return f"{Decimal(str(value)):.0%}"
        except InvalidOperation:
            return str(value)
    if currency and ("amount" in key or key in {"total", "balance", "difference"}):
        try:
            return money_display(Money(Decimal(str(value)), currency))
        except (InvalidOperation, DomainError):
            return str(value)
    return str(value)
