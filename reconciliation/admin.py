"""Reconciliation admin: bank accounts (numbers masked), statements with read-only lines and
an upload form that calls the import service, and the import log. Every write goes through
``reconciliation.services``; statements and logs are read-only here.

Roles: view for finance_admin, controller, ar_clerk, ap_clerk, auditor; add bank accounts
and upload statements for finance_admin, ar_clerk, ap_clerk.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from unfold.admin import ModelAdmin, TabularInline

from core.admin import HistoryAdmin
from core.exceptions import DomainError
from core.ledger.models import Account
from reconciliation.enums import StatementFormatChoice
from reconciliation.importers import BANK_MAPPINGS
from reconciliation.importers.common import MAX_FILE_BYTES
from reconciliation.models import BankAccount, ImportLog, Statement, StatementLine
from reconciliation.services import IMPORT_PERMISSION, bank_account_create, statement_import
from reconciliation.services_matching import reconciliation_run_start


class BankAccountAddForm(forms.ModelForm):
    # Typed in once, stored encrypted, never shown again except masked.
    account_number_input = forms.CharField(label="Account number", required=False, max_length=34)
    iban_input = forms.CharField(label="IBAN", required=False, max_length=42)

    class Meta:
        model = BankAccount
        fields = ("name", "currency", "ledger_account", "bank_name", "bic")


@admin.register(BankAccount)
class BankAccountAdmin(HistoryAdmin):
    list_display = (
        "name",
        "currency",
        "iban_masked",
        "account_number_masked",
        "ledger_account",
        "is_active",
    )
    list_filter = ("currency", "is_active")
    search_fields = ("name", "bank_name")
    exclude = ("account_number", "iban")

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        if obj is None:
            kwargs["form"] = BankAccountAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return (
                "name",
                "currency",
                "ledger_account",
                "bank_name",
                "bic",
                "account_number_input",
                "iban_input",
            )
        return (
            "name", "currency", "ledger_account", "bank_name", "bic", "iban_masked",
            "account_number_masked", "is_active", "created_at", "created_by",
        )  # fmt: skip

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ()
        return self.get_fields(request, obj)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "ledger_account":
            kwargs["queryset"] = Account.objects.filter(type="asset", is_active=True)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: BankAccount, form: Any, change: bool) -> None:
        if change:
            return
        data = form.cleaned_data
        try:
            created = bank_account_create(
                actor=request.user,
                name=data["name"],
                currency=data["currency"],
                ledger_account_id=data["ledger_account"].pk,
                bank_name=data.get("bank_name", ""),
                bic=data.get("bic", ""),
                account_number=data.get("account_number_input", ""),
                iban=data.get("iban_input", ""),
            )
        except DomainError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            raise PermissionDenied(exc.message) from None
        obj.pk = created.pk

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class StatementLineInline(TabularInline):
    model = StatementLine
    extra = 0
    can_delete = False
    fields = (
        "position", "booking_date", "value_date", "amount", "currency", "description",
        "counterparty_name", "counterparty_account", "end_to_end_id", "bank_reference", "status",
    )  # fmt: skip
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class StatementUploadForm(forms.Form):
    bank_account = forms.ModelChoiceField(queryset=BankAccount.objects.filter(is_active=True))
    file = forms.FileField()
    format = forms.ChoiceField(
        choices=[("", "Detect from the content"), *StatementFormatChoice.choices], required=False
    )
    csv_mapping = forms.ChoiceField(
        choices=[("", "The bank account's own mapping"), *((k, k) for k in sorted(BANK_MAPPINGS))],
        required=False,
    )


@admin.register(Statement)
class StatementAdmin(HistoryAdmin):
    list_display = (
        "pk", "bank_account", "format", "statement_id", "currency", "opening_balance",
        "closing_balance", "line_count", "skipped_line_count", "imported_at", "imported_by",
    )  # fmt: skip
    list_filter = ("format", "currency", "bank_account")
    search_fields = ("statement_id", "file_name", "file_sha256")
    inlines = (StatementLineInline,)
    change_list_template = "admin/reconciliation/statement/change_list.html"

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in Statement._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list[Any]:
        return [
            path(
                "upload/",
                self.admin_site.admin_view(self.upload_view),
                name="reconciliation_statement_upload",
            ),
            *super().get_urls(),
        ]

    def upload_view(self, request: HttpRequest) -> HttpResponse:
        """Upload a statement file; the import service does the work (all or nothing)."""
        if not request.user.has_perm(IMPORT_PERMISSION):
            raise PermissionDenied
        form = StatementUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            if upload.size > MAX_FILE_BYTES:
                self.message_user(
                    request, f"The file is larger than {MAX_FILE_BYTES} bytes.", messages.ERROR
                )
            else:
                try:
                    outcome = statement_import(
                        actor=request.user,
                        bank_account_id=form.cleaned_data["bank_account"].pk,
                        data=upload.read(),
                        filename=upload.name,
                        format=form.cleaned_data["format"] or None,
                        csv_mapping=form.cleaned_data["csv_mapping"] or None,
                    )
                except DomainError as exc:
                    self.message_user(request, f"Refused: {exc.message}", messages.ERROR)
                else:
                    lines = sum(s.line_count - s.skipped_line_count for s in outcome.statements)
                    if outcome.created:
                        # New lines: a reconciliation run, as after an import through the API.
                        run = reconciliation_run_start(
                            actor=request.user,
                            bank_account_id=form.cleaned_data["bank_account"].pk,
                            authorized_by_caller=True,
                        )
                        self.message_user(
                            request,
                            f"Imported {len(outcome.statements)} statement(s), {lines} new lines; "
                            f"reconciliation run {run.pk} started.",
                            messages.SUCCESS,
                        )
                    else:
                        self.message_user(
                            request, "This file was imported before; nothing new.", messages.WARNING
                        )
                    return HttpResponseRedirect(
                        reverse("admin:reconciliation_statement_changelist")
                    )
        context = {
            **self.admin_site.each_context(request),
            "title": "Upload a bank statement",
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/reconciliation/statement/upload.html", context)


@admin.register(ImportLog)
class ImportLogAdmin(ModelAdmin):
    list_display = (
        "created_at",
        "bank_account",
        "file_name",
        "format",
        "result",
        "error_code",
        "statement_count",
        "line_count",
        "actor",
    )
    list_filter = ("result", "format", "bank_account")
    search_fields = ("file_name", "file_sha256", "message")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [*(f.name for f in ImportLog._meta.fields), "statements"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# The other screens: sign-off, exceptions, feeds, matching (suggestions, rules), payouts.
import reconciliation.admin_close  # noqa: E402
import reconciliation.admin_exceptions  # noqa: E402
import reconciliation.admin_feeds  # noqa: E402
import reconciliation.admin_lines  # noqa: E402
import reconciliation.admin_matching  # noqa: E402
import reconciliation.admin_payouts  # noqa: E402, F401
