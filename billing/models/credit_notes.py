"""Credit notes: the only way to reduce what an issued invoice charged."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from djmoney.models.fields import MoneyField
from simple_history.models import HistoricalRecords

from billing.models.documents import MONEY, Customer, Invoice


class CreditNote(models.Model):
    # Gapless per year like invoices: CN-2026-000001.
    number = models.CharField(max_length=30, unique=True)
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="credit_notes")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="credit_notes")
    currency = models.CharField(max_length=3)
    subtotal = MoneyField(**MONEY)
    tax = MoneyField(**MONEY)
    total = MoneyField(**MONEY)
    # How the total was used: against the invoice's amount due, the rest to the customer's
    # credit balance.
    applied_to_invoice = MoneyField(**MONEY)
    applied_to_balance = MoneyField(**MONEY)
    reason = models.CharField(max_length=300)
    issue_date = models.DateField()
    ledger_entry = models.ForeignKey(
        "ledger.JournalEntry", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    issued_at = models.DateTimeField(default=timezone.now, editable=False)
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ("-issued_at", "-pk")
        constraints = [
            models.CheckConstraint(condition=Q(total__gt=0), name="credit_note_positive"),
        ]

    def __str__(self) -> str:
        return self.number


class CreditNoteLine(models.Model):
    credit_note = models.ForeignKey(CreditNote, on_delete=models.PROTECT, related_name="lines")
    currency = models.CharField(max_length=3)
    description = models.CharField(max_length=500)
    amount = MoneyField(**MONEY)
    tax_rate = models.DecimalField(max_digits=7, decimal_places=6)
    tax_amount = MoneyField(**MONEY)

    class Meta:
        ordering = ("pk",)

    def __str__(self) -> str:
        return self.description


class CreditApplication(models.Model):
    """Part of a customer's credit balance (an overpayment, a credit note's excess) applied to
    one of their open invoices: Dr customer credit / Cr AR (customer_credit_apply)."""

    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="credit_applications"
    )
    invoice = models.ForeignKey(
        Invoice, on_delete=models.PROTECT, related_name="credit_applications"
    )
    currency = models.CharField(max_length=3)
    amount = MoneyField(**MONEY)
    applied_date = models.DateField()
    ledger_entry = models.ForeignKey(
        "ledger.JournalEntry", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    applied_at = models.DateTimeField(default=timezone.now, editable=False)
    applied_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ("-applied_at", "-pk")
        verbose_name = "credit applied"
        verbose_name_plural = "credit applied"
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="credit_application_positive"),
        ]

    def __str__(self) -> str:
        return f"Credit applied to {self.invoice}"
