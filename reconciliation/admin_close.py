"""Admin screens for the reconciliation report, period sign-off (and reopening) and the
reconciliation audit trail. Writes go through ``services_close``; the audit trail is
read-only for everyone."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from unfold.admin import ModelAdmin

from core.admin import ReadOnlyAdminMixin
from core.exceptions import DomainError
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

    list_display = (
        "bank_account", "period_start", "period_end", "currency", "statement_balance",
        "book_balance", "status", "signed_by", "signed_at",
    )  # fmt: skip
    list_filter = ("status", "bank_account")
    list_select_related = ("bank_account", "signed_by")
    readonly_fields = (
        "bank_account", "period_start", "period_end", "currency", "statement_balance",
        "book_balance", "unexplained", "status", "note", "signed_by", "signed_at",
        "period_lock", "reopened_by", "reopened_at", "reopen_reason",
    )  # fmt: skip
    exclude = ("report",)
    change_list_template = "admin/reconciliation/signoff/change_list.html"
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
        sign_form = SignOffForm(request.POST or None)
        report = None
        error = ""
        if form.is_valid():
            account = form.cleaned_data["bank_account"]
            start, end = form.cleaned_data["period_start"], form.cleaned_data["period_end"]
            if request.method == "POST" and sign_form.is_valid():
                try:
                    sign_off = sign_off_create(
                        actor=request.user,
                        bank_account_id=account.pk,
                        period_start=start,
                        period_end=end,
                        note=sign_form.cleaned_data["note"],
                    )
                except DomainError as exc:
                    self.message_user(request, f"Not signed off: {exc.message}", messages.ERROR)
                else:
                    self.message_user(
                        request,
                        f"{account} signed off through {end}; the period is locked.",
                        messages.SUCCESS,
                    )
                    return HttpResponseRedirect(
                        reverse("admin:reconciliation_signoff_change", args=[sign_off.pk])
                    )
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
    readonly_fields = ("at", "action", "actor", "bank_account", "subject", "reason", "details")

    @admin.display(description="why")
    def short_reason(self, obj: AuditEvent) -> str:
        return obj.reason[:80]
