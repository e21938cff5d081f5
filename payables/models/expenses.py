"""Expense reports: an employee's out-of-pocket spending, approved, then reimbursed through
a payment run (the employee is a payee of kind ``employee``)."""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django_fsm import FSMField, FSMModelMixin, transition
from djmoney.models.fields import MoneyField
from simple_history.models import HistoricalRecords

from payables.enums import ExpenseReportStatus as S
from payables.models.common import MONEY, user_fk


class ExpenseCategory(models.Model):
    """A kind of spending, its GL account and its policy limit per line."""

    name = models.CharField(max_length=100, unique=True)
    account = models.ForeignKey("ledger.Account", on_delete=models.PROTECT, related_name="+")
    # Per line, in ``limit_currency`` (empty: the functional currency); no amount: no limit.
    # A line above it needs a justification.
    limit_amount = models.DecimalField(max_digits=19, decimal_places=4, null=True, blank=True)
    limit_currency = models.CharField(max_length=3, blank=True, default="")
    receipt_required_above = models.DecimalField(
        max_digits=19, decimal_places=4, null=True, blank=True
    )
    active = models.BooleanField(default=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ("name",)
        verbose_name_plural = "expense categories"

    def __str__(self) -> str:
        return self.name


class ExpenseReport(FSMModelMixin, models.Model):
    number = models.CharField(max_length=40, unique=True)
    employee = user_fk("expense_reports", null=False)
    # The employee's payee record: bank details and payment holds like any vendor.
    payee = models.ForeignKey(
        "payables.Vendor", on_delete=models.PROTECT, related_name="expense_reports"
    )
    title = models.CharField(max_length=200)
    currency = models.CharField(max_length=3)
    status = FSMField(max_length=20, choices=S.choices, default=S.DRAFT, protected=True)
    total = MoneyField(default=Decimal, **MONEY)
    total_functional = models.DecimalField(max_digits=19, decimal_places=4, default=Decimal)
    amount_paid = MoneyField(default=Decimal, **MONEY)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    submitted_at = models.DateTimeField(null=True, blank=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    rejected_at = models.DateTimeField(null=True, blank=True)
    reimbursed_at = models.DateTimeField(null=True, blank=True)
    journal_entry = models.OneToOneField(
        "ledger.JournalEntry", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    history = HistoricalRecords()

    class Meta:
        ordering = ("-created_at", "-pk")
        permissions = [("approve_expensereport", "Can approve or reject expense reports")]
        constraints = [
            models.CheckConstraint(
                condition=Q(amount_paid__gte=0) & Q(amount_paid__lte=F("total")),
                name="expense_paid_within_total",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.number} {self.title}"

    @property
    def amount_due(self) -> Decimal:
        return self.total.amount - self.amount_paid.amount

    @transition(field=status, source=[S.DRAFT, S.REJECTED], target=S.SUBMITTED)
    def submit(self) -> None:
        self.submitted_at = timezone.now()
        self.rejected_at = None

    @transition(field=status, source=S.SUBMITTED, target=S.APPROVED)
    def approve(self) -> None:
        self.approved_at = timezone.now()

    @transition(field=status, source=S.SUBMITTED, target=S.REJECTED)
    def reject(self) -> None:
        self.rejected_at = timezone.now()

    @transition(field=status, source=S.SUBMITTED, target=S.DRAFT)
    def reopen(self) -> None:
        self.submitted_at = None

    @transition(field=status, source=S.APPROVED, target=S.REIMBURSED)
    def mark_reimbursed(self) -> None:
        self.reimbursed_at = timezone.now()


def expense_receipt_path(instance: ExpenseLine, filename: str) -> str:
    # Never the uploaded name (B7).
    return f"payables/expenses/{instance.report_id}/{instance.receipt_sha256}{instance.receipt_ext}"


class ExpenseLine(models.Model):
    report = models.ForeignKey(ExpenseReport, on_delete=models.PROTECT, related_name="lines")
    position = models.PositiveIntegerField()
    spent_on = models.DateField()
    category = models.ForeignKey(ExpenseCategory, on_delete=models.PROTECT, related_name="+")
    description = models.CharField(max_length=300)
    currency = models.CharField(max_length=3)
    amount = MoneyField(**MONEY)
    # Why a line above the category's limit is still right (needed to submit it).
    justification = models.CharField(max_length=500, blank=True, default="")
    over_limit = models.BooleanField(default=False)
    receipt = models.FileField(upload_to=expense_receipt_path, blank=True, max_length=300)
    receipt_name = models.CharField(max_length=200, blank=True, default="")
    receipt_sha256 = models.CharField(max_length=64, blank=True, default="")
    receipt_ext = models.CharField(max_length=8, blank=True, default="")

    history = HistoricalRecords()

    class Meta:
        ordering = ("report", "position")
        constraints = [
            models.UniqueConstraint(fields=("report", "position"), name="expense_line_position"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="expense_line_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.report_id}/{self.position} {self.description}"
