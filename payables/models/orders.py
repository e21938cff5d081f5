"""Purchase orders, their lines, and receipts of goods or services against them."""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django_fsm import FSMField, FSMModelMixin, transition
from djmoney.models.fields import MoneyField
from simple_history.models import HistoricalRecords

from payables.enums import PurchaseOrderStatus as S
from payables.models.common import MONEY, QUANTITY, user_fk
from payables.models.vendors import Vendor


class PurchaseOrder(FSMModelMixin, models.Model):
    # Gapless per year ("PO-2026-000001"), taken when the order is created.
    number = models.CharField(max_length=40, unique=True)
    vendor = models.ForeignKey(Vendor, on_delete=models.PROTECT, related_name="purchase_orders")
    currency = models.CharField(max_length=3)
    department = models.CharField(max_length=100, blank=True, default="")
    description = models.CharField(max_length=500, blank=True, default="")
    requester = user_fk("purchase_orders_requested", null=False)
    status = FSMField(max_length=20, choices=S.choices, default=S.DRAFT, protected=True)
    total = MoneyField(default=Decimal, **MONEY)
    # The total in the functional currency at the submit date's rate: picks the approval levels.
    total_functional = models.DecimalField(max_digits=19, decimal_places=4, default=Decimal)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    submitted_at = models.DateTimeField(null=True, blank=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    rejected_at = models.DateTimeField(null=True, blank=True)
    ordered_at = models.DateTimeField(null=True, blank=True)
    ordered_by = user_fk()
    received_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancel_reason = models.CharField(max_length=300, blank=True, default="")
    # The rendered PDF sent to the vendor, and when.
    pdf = models.FileField(upload_to="payables/purchase-orders/", blank=True, max_length=300)
    sent_at = models.DateTimeField(null=True, blank=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ("-created_at", "-pk")
        permissions = [
            ("approve_purchaseorder", "Can approve or reject purchase orders"),
            ("order_purchaseorder", "Can place approved purchase orders with the vendor"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(total__gte=0), name="po_total_non_negative"),
        ]

    def __str__(self) -> str:
        return self.number

    @transition(field=status, source=S.DRAFT, target=S.PENDING_APPROVAL)
    def submit(self) -> None:
        self.submitted_at = timezone.now()

    @transition(field=status, source=[S.DRAFT, S.PENDING_APPROVAL], target=S.APPROVED)
    def approve(self) -> None:
        self.approved_at = timezone.now()

    @transition(field=status, source=S.PENDING_APPROVAL, target=S.REJECTED)
    def reject(self) -> None:
        self.rejected_at = timezone.now()

    @transition(field=status, source=[S.PENDING_APPROVAL, S.APPROVED], target=S.DRAFT)
    def reopen(self) -> None:
        """An edit after submission: back to draft, decisions voided (C5)."""
        self.submitted_at = None
        self.approved_at = None

    @transition(field=status, source=S.APPROVED, target=S.ORDERED)
    def place(self, *, by: object) -> None:
        self.ordered_at = timezone.now()
        self.ordered_by = by  # type: ignore[assignment]

    @transition(field=status, source=S.ORDERED, target=S.RECEIVED)
    def mark_received(self) -> None:
        self.received_at = timezone.now()

    @transition(field=status, source=[S.ORDERED, S.RECEIVED], target=S.CLOSED)
    def close(self) -> None:
        self.closed_at = timezone.now()

    @transition(
        field=status,
        source=[S.DRAFT, S.PENDING_APPROVAL, S.APPROVED, S.REJECTED, S.ORDERED],
        target=S.CANCELLED,
    )
    def cancel(self, *, reason: str) -> None:
        self.cancelled_at = timezone.now()
        self.cancel_reason = reason


class PurchaseOrderLine(models.Model):
    order = models.ForeignKey(PurchaseOrder, on_delete=models.PROTECT, related_name="lines")
    position = models.PositiveIntegerField()
    description = models.CharField(max_length=300)
    quantity = models.DecimalField(**QUANTITY)
    currency = models.CharField(max_length=3)
    unit_price = MoneyField(**MONEY)
    amount = MoneyField(**MONEY)
    # Raised by receipts; at most ``quantity``.
    quantity_received = models.DecimalField(default=Decimal, **QUANTITY)
    # Where a bill for this line posts: operating expenses, or inventory for stock.
    is_inventory = models.BooleanField(default=False)

    history = HistoricalRecords()

    class Meta:
        ordering = ("order", "position")
        constraints = [
            models.UniqueConstraint(fields=("order", "position"), name="po_line_position"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="po_line_quantity_positive"),
            models.CheckConstraint(condition=Q(unit_price__gte=0), name="po_line_price_positive"),
            models.CheckConstraint(
                condition=Q(quantity_received__gte=0) & Q(quantity_received__lte=F("quantity")),
                name="po_line_received_within_ordered",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.order_id}/{self.position} {self.description}"

    @property
    def quantity_outstanding(self) -> Decimal:
        return self.quantity - self.quantity_received


class Receipt(models.Model):
    """Goods or services received against an order, in full or in part."""

    order = models.ForeignKey(PurchaseOrder, on_delete=models.PROTECT, related_name="receipts")
    received_on = models.DateField()
    note = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = user_fk()

    history = HistoricalRecords()

    class Meta:
        ordering = ("-received_on", "-pk")

    def __str__(self) -> str:
        return f"Receipt {self.pk} for {self.order}"


class ReceiptLine(models.Model):
    receipt = models.ForeignKey(Receipt, on_delete=models.PROTECT, related_name="lines")
    order_line = models.ForeignKey(
        PurchaseOrderLine, on_delete=models.PROTECT, related_name="receipt_lines"
    )
    quantity = models.DecimalField(**QUANTITY)

    class Meta:
        ordering = ("receipt", "pk")
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="receipt_line_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} of line {self.order_line_id}"
