"""Marketing spend in the workspace: listed and shown read-only, with its history.

Spend is recorded through ``POST /api/reporting/marketing-spend`` (the service
``reporting.services.marketing_spend_record``), never edited here. Roles: holders of
``reporting.view_marketingspend`` (finance_admin, controller, auditor; migration 0005), as
every list is gated by its model's view permission.
"""

from __future__ import annotations

from django.contrib import admin

from core.admin import HistoryAdmin, ReadOnlyAdminMixin
from core.admin_confirm import amount_text
from reporting.models import MarketingSpend


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
