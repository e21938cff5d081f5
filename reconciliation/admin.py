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
from django.utils.html import format_html
from django.utils.text import Truncator
from djmoney.money import Money
from unfold.admin import ModelAdmin, TabularInline
from unfold.decorators import action

from core.admin import HistoryAdmin, money_display
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
    hide_title = True  # the row's own text repeated above it adds nothing
    extra = 0
    can_delete = False
    fields = ("line_link", "booking_date", "amount_display", "counterparty_name", "text",
              "bank_reference", "status")  # fmt: skip
    readonly_fields = fields
    verbose_name_plural = "Lines"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="Line")
    def line_link(self, line: StatementLine) -> str:
        url = reverse("admin:reconciliation_statementline_change", args=[line.pk])
        return format_html('<a href="{}">{}</a>', url, line.position)

    @admin.display(description="Amount")
    def amount_display(self, line: StatementLine) -> str:
        return money_display(Money(line.amount, line.currency))

    @admin.display(description="Bank text")
    def text(self, line: StatementLine) -> str:
        return Truncator(line.description).chars(60)


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
    list_display = ("statement_label", "bank_account", "format", "closing_display",
                    "closing_date", "line_count", "imported_at")  # fmt: skip
    list_display_links = ("statement_label",)
    list_filter = ("format", "currency", "bank_account")
    search_fields = ("statement_id", "file_name", "file_sha256")
    inlines = (StatementLineInline,)
    change_list_template = "admin/reconciliation/statement/change_list.html"
    # The theme shows list actions above the list (it has no object tools).
    actions_list = ("open_upload",)

    @admin.display(description="Statement", ordering="pk")
    def statement_label(self, statement: Statement) -> str:
        return statement.statement_id or f"Statement {statement.pk}"

    @admin.display(description="Closing balance", ordering="closing_balance")
    def closing_display(self, statement: Statement) -> str:
        if statement.closing_balance is None:
            return "-"
        return money_display(Money(statement.closing_balance, statement.currency))

    def has_upload_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(IMPORT_PERMISSION)

    @action(description="Upload a bank statement", url_path="open-upload", permissions=["upload"])
    def open_upload(self, request: HttpRequest) -> HttpResponse:
        return HttpResponseRedirect(reverse("admin:reconciliation_statement_upload"))

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
        "file_name",
        "bank_account",
        "result",
        "short_message",
        "line_count",
        "actor",
    )
    list_filter = ("result", "format", "bank_account")
    search_fields = ("file_name", "file_sha256", "message")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [*(f.name for f in ImportLog._meta.fields), "statements"]

    @admin.display(description="What happened")
    def short_message(self, log: ImportLog) -> str:
        return Truncator(log.message).chars(60) or "-"

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
