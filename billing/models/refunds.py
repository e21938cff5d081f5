"""Refunds: money given back, from a payment or from the customer's credit balance."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from djmoney.models.fields import MoneyField
from simple_history.models import HistoricalRecords

from billing.models.documents import MONEY, Customer, Payment
from core.money import money_text


class Refund(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="refunds")
    # The payment refunded; empty for a refund of credit balance alone.
    payment = models.ForeignKey(
        Payment, on_delete=models.PROTECT, null=True, blank=True, related_name="refunds"
    )
    currency = models.CharField(max_length=3)
    amount = MoneyField(**MONEY)
    # How the amount was found: credit balance first, then payments taken off invoices.
    from_credit_balance = MoneyField(**MONEY)
    from_invoices = MoneyField(**MONEY)
    reason = models.CharField(max_length=300)
    refund_date = models.DateField()
    # One refund per processor refund id: a webhook and a retry cannot record it twice.
    processor_refund_id = models.CharField(max_length=200, null=True, blank=True, unique=True)
    ledger_entry = models.ForeignKey(
        "ledger.JournalEntry", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ("-refund_date", "-pk")
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="refund_positive"),
        ]

    def __str__(self) -> str:
        return f"Refund {self.pk} {money_text(self.amount)}"


class RefundAllocation(models.Model):
    """What a refund took back from one invoice (it is open again for that much)."""

    refund = models.ForeignKey(Refund, on_delete=models.PROTECT, related_name="allocations")
    invoice = models.ForeignKey(
        "billing.Invoice", on_delete=models.PROTECT, related_name="refund_allocations"
    )
    currency = models.CharField(max_length=3)
    amount = MoneyField(**MONEY)

    class Meta:
        ordering = ("pk",)

    def __str__(self) -> str:
        return f"{money_text(self.amount)} back from invoice {self.invoice_id}"
