"""Admin for processor payouts (Stripe payouts, PayPal and Coinbase Commerce settlements):
read-only (they change only through the services), with their transactions inline and history;
"Import payouts from Stripe" and "Import settlements from PayPal" as actions and at
``import/`` and ``import-paypal/`` (POST); a Coinbase Commerce settlement export uploaded at
``import-coinbase/``.

Roles: view finance_admin, ar_clerk, ap_clerk, controller, integration, auditor; import
finance_admin, ar_clerk, ap_clerk, controller, integration.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from djmoney.money import Money
from unfold.admin import TabularInline
from unfold.decorators import action

from core.admin import HistoryAdmin, ReadOnlyAdminMixin, money_display
from core.exceptions import DomainError
from reconciliation.importers.common import MAX_FILE_BYTES
from reconciliation.models import Payout, PayoutItem
from reconciliation.services_payouts import PayoutImportResult, payouts_import
from reconciliation.services_settlements import (
    coinbase_settlement_import,
    paypal_settlements_import,
)

IMPORT_PERMISSION = "reconciliation.add_payout"


class CoinbaseUploadForm(forms.Form):
    file = forms.FileField(help_text="The settlement export (JSON) downloaded from Coinbase.")


class PayoutItemInline(ReadOnlyAdminMixin, TabularInline):
    model = PayoutItem
    hide_title = True  # the row's own text repeated above it adds nothing
    fields = ("balance_transaction_id", "category", "source_id", "charge_id", "amount", "fee",
              "net", "currency", "payment", "refund", "description")  # fmt: skip
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Payout)
class PayoutAdmin(ReadOnlyAdminMixin, HistoryAdmin):
    list_display = ("external_id", "provider", "amount_display", "fees_display", "arrival_date",
                    "status", "bank_account")  # fmt: skip
    list_filter = ("provider", "status", "currency", "provider_status", "bank_account")
    search_fields = ("external_id", "items__charge_id", "items__source_id")
    date_hierarchy = "arrival_date"
    inlines = (PayoutItemInline,)
    exclude = ("raw",)
    actions = ("import_from_stripe", "import_from_paypal")
    # The theme shows list actions above the list (it has no object tools).
    actions_list = ("open_coinbase_upload",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in Payout._meta.fields if f.name != "raw"]

    @admin.display(description="Amount", ordering="amount")
    def amount_display(self, payout: Payout) -> str:
        return money_display(Money(payout.amount, payout.currency))

    @admin.display(description="Fees")
    def fees_display(self, payout: Payout) -> str:
        return money_display(Money(payout.fees, payout.currency))

    def has_import_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(IMPORT_PERMISSION)

    def _report(self, request: HttpRequest, what: str, result: PayoutImportResult) -> None:
        level = messages.WARNING if result.exceptions else messages.SUCCESS
        self.message_user(
            request,
            f"Fetched {result.fetched} {what}: {result.created} new, {result.updated} updated, "
            f"{result.unchanged} unchanged; {result.exceptions} new do not add up.",
            level,
        )

    def _import(self, request: HttpRequest) -> None:
        try:
            result = payouts_import(actor=request.user)
        except DomainError as exc:
            self.message_user(request, f"Import failed: {exc.message}", messages.ERROR)
            return
        self._report(request, "payout(s) from Stripe", result)

    def _import_paypal(self, request: HttpRequest) -> None:
        try:
            result = paypal_settlements_import(actor=request.user)
        except DomainError as exc:
            self.message_user(request, f"Import failed: {exc.message}", messages.ERROR)
            return
        self._report(request, "settlement(s) from PayPal", result)

    @admin.action(description="Import payouts from Stripe", permissions=["import"])
    def import_from_stripe(self, request: HttpRequest, queryset: QuerySet[Payout]) -> None:
        # The selection does not matter: every recent payout is fetched.
        self._import(request)

    @admin.action(description="Import settlements from PayPal", permissions=["import"])
    def import_from_paypal(self, request: HttpRequest, queryset: QuerySet[Payout]) -> None:
        # The selection does not matter: every recent withdrawal is fetched.
        self._import_paypal(request)

    @action(
        description="Upload a Coinbase Commerce settlement",
        url_path="open-coinbase-upload",
        permissions=["import"],
    )
    def open_coinbase_upload(self, request: HttpRequest) -> HttpResponse:
        return HttpResponseRedirect(reverse("admin:reconciliation_payout_import_coinbase"))

    def get_urls(self) -> list[Any]:
        return [
            path(
                "import/",
                self.admin_site.admin_view(self.import_view),
                name="reconciliation_payout_import",
            ),
            path(
                "import-paypal/",
                self.admin_site.admin_view(self.import_paypal_view),
                name="reconciliation_payout_import_paypal",
            ),
            path(
                "import-coinbase/",
                self.admin_site.admin_view(self.import_coinbase_view),
                name="reconciliation_payout_import_coinbase",
            ),
            *super().get_urls(),
        ]

    def import_view(self, request: HttpRequest) -> HttpResponse:
        """POST: import now, back to the list with the counts."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_import_permission(request):
            raise PermissionDenied
        self._import(request)
        return HttpResponseRedirect(reverse("admin:reconciliation_payout_changelist"))

    def import_paypal_view(self, request: HttpRequest) -> HttpResponse:
        """POST: import PayPal settlements now, back to the list with the counts."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_import_permission(request):
            raise PermissionDenied
        self._import_paypal(request)
        return HttpResponseRedirect(reverse("admin:reconciliation_payout_changelist"))

    def import_coinbase_view(self, request: HttpRequest) -> HttpResponse:
        """Upload a Coinbase Commerce settlement export; the import service does the work
        (all or nothing)."""
        if not self.has_import_permission(request):
            raise PermissionDenied
        form = CoinbaseUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            if upload.size > MAX_FILE_BYTES:
                self.message_user(
                    request, f"The file is larger than {MAX_FILE_BYTES} bytes.", messages.ERROR
                )
            else:
                try:
                    result = coinbase_settlement_import(actor=request.user, data=upload.read())
                except DomainError as exc:
                    self.message_user(request, f"Refused: {exc.message}", messages.ERROR)
                else:
                    self._report(request, "Coinbase Commerce settlement(s)", result)
                    return HttpResponseRedirect(reverse("admin:reconciliation_payout_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": "Upload a Coinbase Commerce settlement",
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(
            request, "admin/reconciliation/payout/import_coinbase.html", context
        )
