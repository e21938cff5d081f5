"""Payment plans admin: plans with their installments and reminders, read-only; the one
write, canceling a plan, goes through the service. History is kept on plans and installments."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from unfold.admin import ModelAdmin, TabularInline

from core.admin import HistoryAdmin, money_display
from core.exceptions import DomainError
from receivables.models_plans import Installment, InstallmentReminder, PaymentPlan
from receivables.services.payment_plans import payment_plan_cancel


class InstallmentInline(TabularInline):
    model = Installment
    extra = 0
    can_delete = False
    fields = (
        "sequence",
        "due_date",
        "amount_display",
        "status",
        "attempts",
        "paid_date",
        "paid_payment",
    )
    readonly_fields = fields
    hide_title = True

    @admin.display(description="Amount")
    def amount_display(self, obj: Installment) -> str:
        return money_display(obj.amount)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(PaymentPlan)
class PaymentPlanAdmin(HistoryAdmin):
    """Roles: view for finance_admin, ar_clerk, controller, auditor; cancel for
    finance_admin and ar_clerk. Plans are made through the API (the service)."""

    list_display = (
        "plan_label",
        "customer",
        "total_display",
        "paid_display",
        "status",
        "first_due_date",
    )
    list_filter = ("status", "currency")
    list_select_related = ("customer",)
    search_fields = ("customer__name", "invoices__number")
    inlines = (InstallmentInline,)
    actions = ("cancel_plans",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in PaymentPlan._meta.fields]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="Plan", ordering="pk")
    def plan_label(self, obj: PaymentPlan) -> str:
        return f"Plan {obj.pk}"

    @admin.display(description="Total")
    def total_display(self, obj: PaymentPlan) -> str:
        return money_display(obj.total)

    @admin.display(description="Paid")
    def paid_display(self, obj: PaymentPlan) -> str:
        return money_display(obj.amount_paid)

    @admin.action(description="Cancel the selected plans", permissions=("change",))
    def cancel_plans(self, request: HttpRequest, queryset: QuerySet[PaymentPlan]) -> None:
        for plan in queryset:
            try:
                payment_plan_cancel(actor=request.user, plan_id=plan.pk)
            except DomainError as exc:
                self.message_user(request, f"Plan {plan.pk}: {exc.message}", messages.ERROR)
            else:
                self.message_user(request, f"Plan {plan.pk} canceled.", messages.SUCCESS)


@admin.register(InstallmentReminder)
class InstallmentReminderAdmin(ModelAdmin):
    """Roles: view for finance_admin, ar_clerk, controller, auditor. Append-only."""

    list_display = ("installment", "sent_date", "email_to", "email_subject")
    list_filter = ("sent_date",)
    readonly_fields = tuple(f.name for f in InstallmentReminder._meta.fields)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
