"""Vendor bills: captured, matched against order and receipt, approved (posting Dr expense
or inventory / Cr AP), scheduled into payment runs and paid, in full or in parts."""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django_fsm import FSMField, FSMModelMixin, transition
from djmoney.models.fields import MoneyField
from simple_history.models import HistoricalRecords

from payables.enums import BillStatus as S
from payables.enums import MatchStatus
from payables.models.common import MONEY, QUANTITY, user_fk
from payables.models.orders import PurchaseOrder, PurchaseOrderLine
from payables.models.vendors import Vendor


class Bill(FSMModelMixin, models.Model):
    vendor = models.ForeignKey(Vendor, on_delete=models.PROTECT, related_name="bills")
    # The vendor's own invoice number: unique per vendor among live bills.
    number = models.CharField(max_length=60)
    currency = models.CharField(max_length=3)
    purchase_order = models.ForeignKey(
        PurchaseOrder, on_delete=models.PROTECT, null=True, blank=True, related_name="bills"
    )
    bill_date = models.DateField()
    due_date = models.DateField()
    # Early-payment discount from the vendor's terms: how much, and until when.
    discount_date = models.DateField(null=True, blank=True)
    discount_amount = MoneyField(default=Decimal, **MONEY)
    description = models.CharField(max_length=500, blank=True, default="")
    status = FSMField(max_length=20, choices=S.choices, default=S.DRAFT, protected=True)
    total = MoneyField(default=Decimal, **MONEY)
    total_functional = models.DecimalField(max_digits=19, decimal_places=4, default=Decimal)
    # Settled so far by payment runs (the discount taken counts as settled).
    amount_paid = MoneyField(default=Decimal, **MONEY)
    match_status = models.CharField(
        max_length=20, choices=MatchStatus.choices, default=MatchStatus.NOT_APPLICABLE
    )
    # Per line: ordered/received/billed quantities and prices, variances, within tolerance.
    match_result = models.JSONField(default=dict, blank=True)
    # A suspected duplicate (same vendor, amount and date) let through on purpose, and why.
    duplicate_override_reason = models.CharField(max_length=300, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = user_fk()
    submitted_at = models.DateTimeField(null=True, blank=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)
    void_reason = models.CharField(max_length=300, blank=True, default="")
    # Dr expense / Cr AP, posted on approval; reversed if the bill is voided.
    journal_entry = models.OneToOneField(
        "ledger.JournalEntry", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    attachment = models.FileField(upload_to="payables/bills/", blank=True, max_length=300)

    history = HistoricalRecords()

    class Meta:
        ordering = ("-bill_date", "-pk")
        permissions = [("approve_bill", "Can approve bills and accept match exceptions")]
        constraints = [
            models.UniqueConstraint(
                fields=("vendor", "number"),
                condition=~Q(status=S.VOID),
                name="bill_unique_vendor_number",
            ),
            models.CheckConstraint(condition=Q(total__gt=0), name="bill_total_positive"),
            models.CheckConstraint(
                condition=Q(amount_paid__gte=0) & Q(amount_paid__lte=F("total")),
                name="bill_paid_within_total",
            ),
            models.CheckConstraint(
                condition=Q(discount_amount__gte=0) & Q(discount_amount__lt=F("total")),
                name="bill_discount_within_total",
            ),
        ]
        indexes = [
            models.Index(
                fields=("currency", "due_date"),
                condition=Q(status__in=[S.APPROVED, S.SCHEDULED]),
                name="bill_open_due_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.vendor} #{self.number}"

    @property
    def amount_due(self) -> Decimal:
        return self.total.amount - self.amount_paid.amount

    @transition(field=status, source=S.DRAFT, target=S.PENDING_APPROVAL)
    def submit(self) -> None:
        self.submitted_at = timezone.now()

    @transition(field=status, source=S.PENDING_APPROVAL, target=S.APPROVED)
    def approve(self) -> None:
        self.approved_at = timezone.now()

    @transition(field=status, source=S.PENDING_APPROVAL, target=S.DRAFT)
    def reopen(self) -> None:
        self.submitted_at = None

    @transition(field=status, source=S.APPROVED, target=S.SCHEDULED)
    def schedule(self) -> None:
        pass

    @transition(field=status, source=S.SCHEDULED, target=S.APPROVED)
    def unschedule(self) -> None:
        pass

    @transition(field=status, source=S.SCHEDULED, target=S.PAID)
    def mark_paid(self) -> None:
        self.paid_at = timezone.now()

    @transition(field=status, source=[S.DRAFT, S.PENDING_APPROVAL, S.APPROVED], target=S.VOID)
    def void(self, *, reason: str) -> None:
        self.voided_at = timezone.now()
        self.void_reason = reason


class BillLine(models.Model):
    bill = models.ForeignKey(Bill, on_delete=models.PROTECT, related_name="lines")
    position = models.PositiveIntegerField()
    description = models.CharField(max_length=300)
    quantity = models.DecimalField(**QUANTITY)
    currency = models.CharField(max_length=3)
    unit_price = MoneyField(**MONEY)
    amount = MoneyField(**MONEY)
    order_line = models.ForeignKey(
        PurchaseOrderLine, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # The expense (or inventory) account debited on approval; empty: by the order line.
    account = models.ForeignKey(
        "ledger.Account", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ("bill", "position")
        constraints = [
            models.UniqueConstraint(fields=("bill", "position"), name="bill_line_position"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="bill_line_quantity_pos"),
            models.CheckConstraint(condition=Q(unit_price__gte=0), name="bill_line_price_pos"),
        ]

    def __str__(self) -> str:
        return f"{self.bill_id}/{self.position} {self.description}"


class MatchTolerance(models.Model):
    """How far a bill may differ from its order and receipt before it needs an approver's
    decision. One row (pk 1), edited in the admin."""

    # Unit price above the order's by more than this share (0.02 = 2 %) is an exception.
    price_percent = models.DecimalField(max_digits=6, decimal_places=4, default=Decimal("0.02"))
    # Billed quantity above the received quantity by more than this share is an exception.
    quantity_percent = models.DecimalField(max_digits=6, decimal_places=4, default=Decimal(0))

    history = HistoricalRecords()

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(pk=1), name="match_tolerance_single")]

    def __str__(self) -> str:
        return f"price +{self.price_percent:%}, quantity +{self.quantity_percent:%}"
