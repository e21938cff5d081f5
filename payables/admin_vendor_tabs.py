"""The vendor's page in tabs: its open bills, the payments made to it, its orders (and, in
``payables.admin``, its bank detail changes and documents). Read-only rows linking to each
document's own page, where its actions are; open bills by due date, the rest most recent first."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from core.admin import money_display
from payables.admin import ReadOnlyInline
from payables.enums import BillStatus
from payables.models import Bill, PaymentRunItem, PurchaseOrder

OPEN_BILLS = (BillStatus.PENDING_APPROVAL, BillStatus.APPROVED, BillStatus.SCHEDULED)


def _link(obj: Any, label: str) -> str:
    url = reverse(f"admin:payables_{obj._meta.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, label)


class _Tab(ReadOnlyInline):
    tab = True
    max_num = 0


class VendorOpenBillsInline(_Tab):
    model = Bill
    fields = ("bill_link", "status", "due_date", "total_display", "due_display")
    readonly_fields = fields
    verbose_name = "open bill"
    verbose_name_plural = "Open bills"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).filter(status__in=OPEN_BILLS).order_by("due_date")

    @admin.display(description="Bill")
    def bill_link(self, bill: Bill) -> str:
        return _link(bill, bill.number)

    @admin.display(description="Total")
    def total_display(self, bill: Bill) -> str:
        return money_display(bill.total)

    @admin.display(description="Amount due")
    def due_display(self, bill: Bill) -> str:
        return money_display(bill.total - bill.amount_paid)


class VendorPaymentsInline(_Tab):
    model = PaymentRunItem
    fk_name = "vendor"
    fields = ("run_link", "document", "amount_display", "discount_display", "run_status")
    readonly_fields = fields
    verbose_name = "payment"
    verbose_name_plural = "Payments"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return (
            super()
            .get_queryset(request)
            .select_related("run", "bill", "expense_report")
            .order_by("-run__payment_date", "-pk")
        )

    @admin.display(description="Payment run")
    def run_link(self, item: PaymentRunItem) -> str:
        return _link(item.run, item.run.number)

    @admin.display(description="Status")
    def run_status(self, item: PaymentRunItem) -> str:
        return item.run.get_status_display()

    @admin.display(description="Pays")
    def document(self, item: PaymentRunItem) -> str:
        if item.bill is not None:
            return _link(item.bill, f"Bill {item.bill.number}")
        if item.expense_report is not None:
            return _link(item.expense_report, item.expense_report.number)
        return "-"

    @admin.display(description="Amount")
    def amount_display(self, item: PaymentRunItem) -> str:
        return money_display(item.amount)

    @admin.display(description="Discount")
    def discount_display(self, item: PaymentRunItem) -> str:
        return money_display(item.discount) if item.discount.amount else "-"


class VendorOrdersInline(_Tab):
    model = PurchaseOrder
    fields = ("order_link", "status", "total_display", "requester", "submitted_at")
    readonly_fields = fields
    verbose_name = "purchase order"
    verbose_name_plural = "Orders"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("requester").order_by("-created_at")

    @admin.display(description="Order")
    def order_link(self, order: PurchaseOrder) -> str:
        return _link(order, order.number)

    @admin.display(description="Total")
    def total_display(self, order: PurchaseOrder) -> str:
        return money_display(order.total)
