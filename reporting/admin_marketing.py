"""Marketing spend in the workspace: listed and shown read-only, with its history.

Spend is recorded through ``POST /api/reporting/marketing-spend`` (the service
``reporting.services.marketing_spend_record``), never edited here. Roles: those who may view
financial reports (finance_admin, controller, auditor, integration).
"""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest

from core.admin import HistoryAdmin, ReadOnlyAdminMixin
from core.admin_confirm import amount_text
from reporting.models import MarketingSpend

READ = "reporting.view_financial_reports"


@admin.register(MarketingSpend)
class MarketingSpendAdmin(ReadOnlyAdminMixin, HistoryAdmin):
    list_display = ("month", "channel", "campaign", "amount_display", "recorded_by", "recorded_at")
    list_filter = ("channel", "currency")
    search_fields = ("channel", "campaign")
    ordering = ("-period", "channel", "campaign", "currency")
    readonly_fields = (
        "channel",
        "campaign",
        "month",
        "amount_display",
        "recorded_by",
        "recorded_at",
    )
    fields = readonly_fields

    @admin.display(description="Month", ordering="period")
    def month(self, spend: MarketingSpend) -> str:
        return f"{spend.period:%Y-%m}"

    @admin.display(description="Amount", ordering="amount")
    def amount_display(self, spend: MarketingSpend) -> str:
        return amount_text(spend.amount, spend.currency)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm(READ))

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return bool(request.user.has_perm(READ))
