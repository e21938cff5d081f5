"""Payment runs: approved bills (and expense reports) due by a date, approved as a whole,
exported as a bank file, then marked paid (Dr AP / Cr bank)."""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django_fsm import FSMField, FSMModelMixin, transition
from djmoney.models.fields import MoneyField
from simple_history.models import HistoricalRecords

from core.money import money_text
from payables.enums import PaymentFileFormat
from payables.enums import PaymentRunStatus as S
from payables.models.common import MONEY, user_fk


class PaymentRun(FSMModelMixin, models.Model):
    number = models.CharField(max_length=40, unique=True)
    currency = models.CharField(max_length=3)
    # Bills due on or before this date are picked (and discounts still open on payment_date).
    pay_by = models.DateField()
    payment_date = models.DateField()
    file_format = models.CharField(max_length=10, choices=PaymentFileFormat.choices)
    status = FSMField(max_length=20, choices=S.choices, default=S.DRAFT, protected=True)
    total = MoneyField(default=Decimal, **MONEY)
    total_functional = models.DecimalField(max_digits=19, decimal_places=4, default=Decimal)
    discount_total = MoneyField(default=Decimal, **MONEY)
    item_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = user_fk()
    submitted_at = models.DateTimeField(null=True, blank=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    exported_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    # Bills due that were left out, and why (vendor on hold, no bank details ...).
    exclusions = models.JSONField(default=list, blank=True)
    file = models.FileField(upload_to="payables/payment-runs/", blank=True, max_length=300)
    file_sha256 = models.CharField(max_length=64, blank=True, default="")

    history = HistoricalRecords()

    class Meta:
        ordering = ("-created_at", "-pk")
        permissions = [("approve_paymentrun", "Can approve payment runs")]

    def __str__(self) -> str:
        return self.number

    @transition(field=status, source=S.DRAFT, target=S.PENDING_APPROVAL)
    def submit(self) -> None:
        self.submitted_at = timezone.now()

    @transition(field=status, source=S.PENDING_APPROVAL, target=S.APPROVED)
    def approve(self) -> None:
        self.approved_at = timezone.now()

    @transition(field=status, source=S.PENDING_APPROVAL, target=S.DRAFT)
    def reopen(self) -> None:
        self.submitted_at = None

    @transition(field=status, source=S.APPROVED, target=S.EXPORTED)
    def mark_exported(self) -> None:
        self.exported_at = timezone.now()

    @transition(field=status, source=S.EXPORTED, target=S.PAID)
    def mark_paid(self) -> None:
        self.paid_at = timezone.now()

    @transition(field=status, source=[S.DRAFT, S.PENDING_APPROVAL, S.APPROVED], target=S.CANCELLED)
    def cancel(self) -> None:
        self.cancelled_at = timezone.now()


class PaymentRunItem(models.Model):
    """One payment in a run: part or all of one bill or expense report."""

    run = models.ForeignKey(PaymentRun, on_delete=models.PROTECT, related_name="items")
    vendor = models.ForeignKey("payables.Vendor", on_delete=models.PROTECT, related_name="+")
    bill = models.ForeignKey(
        "payables.Bill", on_delete=models.PROTECT, null=True, blank=True, related_name="run_items"
    )
    expense_report = models.ForeignKey(
        "payables.ExpenseReport",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="run_items",
    )
    currency = models.CharField(max_length=3)
    # What leaves the bank; the discount taken settles the rest of the bill.
    amount = MoneyField(**MONEY)
    discount = MoneyField(default=Decimal, **MONEY)
    # The AP this item settles, in the functional currency at the bill's rate.
    settled_functional = models.DecimalField(max_digits=19, decimal_places=4, default=Decimal)
    # The payment's id in the bank file (pain.001 EndToEndId, NACHA trace).
    end_to_end_id = models.CharField(max_length=35, unique=True)

    class Meta:
        ordering = ("run", "pk")
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="run_item_positive"),
            models.CheckConstraint(
                condition=Q(bill__isnull=False, expense_report__isnull=True)
                | Q(bill__isnull=True, expense_report__isnull=False),
                name="run_item_one_document",
            ),
        ]
        indexes = [models.Index(fields=("bill",), name="run_item_bill_idx")]

    def __str__(self) -> str:
        return f"{self.run_id}: {money_text(self.amount)} to {self.vendor_id}"
