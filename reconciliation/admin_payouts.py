"""Admin for card-processor payouts: read-only (they change only through the services), with
their balance transactions inline and history; "Import payouts from Stripe" as an action and
at ``import/`` (POST).

Roles: view finance_admin, ar_clerk, ap_clerk, controller, integration, auditor; import
finance_admin, ar_clerk, ap_clerk, controller, integration.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from djmoney.money import Money
from unfold.admin import TabularInline

from core.admin import HistoryAdmin, ReadOnlyAdminMixin, money_display
from core.exceptions import DomainError
from reconciliation.models import Payout, PayoutItem
from reconciliation.services_payouts import payouts_import

IMPORT_PERMISSION = "reconciliation.add_payout"


class PayoutItemInline(ReadOnlyAdminMixin, TabularInline):
    model = PayoutItem
    hide_title = True  # the row's own text repeated above it adds nothing
    fields = ("balance_transaction_id", "category", "source_id", "charge_id", "amount", "fee",
              "net", "currency", "payment", "description")  # fmt: skip
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Payout)
class PayoutAdmin(ReadOnlyAdminMixin, HistoryAdmin):
    list_display = ("external_id", "amount_display", "fees_display", "arrival_date", "status",
                    "bank_account")  # fmt: skip
    list_filter = ("status", "currency", "provider_status", "bank_account")
    search_fields = ("external_id", "items__charge_id", "items__source_id")
    date_hierarchy = "arrival_date"
    inlines = (PayoutItemInline,)
    exclude = ("raw",)
    actions = ("import_from_stripe",)

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

    def _import(self, request: HttpRequest) -> None:
        try:
            result = payouts_import(actor=request.user)
        except DomainError as exc:
            self.message_user(request, f"Import failed: {exc.message}", messages.ERROR)
            return
        level = messages.WARNING if result.exceptions else messages.SUCCESS
        self.message_user(
            request,
            f"Fetched {result.fetched} payout(s) from Stripe: {result.created} new, "
            f"{result.updated} updated, {result.unchanged} unchanged; {result.exceptions} "
            "new do not add up.",
            level,
        )

    @admin.action(description="Import payouts from Stripe", permissions=["import"])
    def import_from_stripe(self, request: HttpRequest, queryset: QuerySet[Payout]) -> None:
        # The selection does not matter: every recent payout is fetched.
        self._import(request)

    def get_urls(self) -> list[Any]:
        return [
            path(
                "import/",
                self.admin_site.admin_view(self.import_view),
                name="reconciliation_payout_import",
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
