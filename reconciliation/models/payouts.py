"""Processor payouts (Stripe payouts, PayPal and Coinbase Commerce settlements) and the
transactions each one pays out.

A payout is one bank deposit that settles many customer payments net of fees, less refunds
and disputes. Its items link to the payments billing recorded (by the processor's charge id),
so reconciling the payout's deposit clears them all from the processor clearing account.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from reconciliation.enums import PayoutStatus
from reconciliation.models.common import AMOUNT, user_fk
from reconciliation.models.statements import BankAccount, StatementLine


class Payout(models.Model):
    provider = models.CharField(max_length=20, default="stripe")
    external_id = models.CharField(max_length=100)
    # Where the deposit lands (by currency), when known.
    bank_account = models.ForeignKey(
        BankAccount, on_delete=models.PROTECT, null=True, blank=True, related_name="payouts"
    )
    # What reaches the bank: positive for a deposit (a negative payout is a debit).
    amount = models.DecimalField(**AMOUNT)
    currency = models.CharField(max_length=3)
    arrival_date = models.DateField()
    provider_status = models.CharField(max_length=20, blank=True, default="")
    automatic = models.BooleanField(default=True)
    # The payout's parts by category (sum of their nets, with fees apart): charges are the
    # gross charges, fees positive what the processor kept, refunds/disputes negative.
    charges = models.DecimalField(**AMOUNT, default=0)
    refunds = models.DecimalField(**AMOUNT, default=0)
    disputes = models.DecimalField(**AMOUNT, default=0)
    fees = models.DecimalField(**AMOUNT, default=0)
    other = models.DecimalField(**AMOUNT, default=0)
    # PayPal: money held back from the deposit (negative) or released into it (positive), and
    # currency conversions into the payout's currency. Stripe payouts leave them at zero.
    holds = models.DecimalField(**AMOUNT, default=0)
    conversions = models.DecimalField(**AMOUNT, default=0)
    status = models.CharField(
        max_length=12, choices=PayoutStatus.choices, default=PayoutStatus.IMPORTED
    )
    # What is wrong when it does not add up (empty otherwise).
    problem = models.TextField(blank=True, default="")
    statement_line = models.ForeignKey(
        StatementLine, on_delete=models.PROTECT, null=True, blank=True, related_name="payouts"
    )
    journal_entry = models.ForeignKey(
        "ledger.JournalEntry", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    imported_at = models.DateTimeField(default=timezone.now, editable=False)
    imported_by = user_fk()
    reconciled_at = models.DateTimeField(null=True, blank=True)
    reconciled_by = user_fk()
    raw = models.JSONField(default=dict, blank=True)

    history = HistoricalRecords(excluded_fields=["raw"])

    class Meta:
        ordering = ("-arrival_date", "-pk")
        constraints = [
            models.UniqueConstraint(fields=("provider", "external_id"), name="payout_once"),
            models.CheckConstraint(
                condition=Q(currency__regex=r"^[A-Z]{3}$"), name="payout_currency_iso"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider} payout {self.external_id} {self.amount} {self.currency}"


class PayoutItem(models.Model):
    """One balance transaction of a payout (a charge, refund, dispute, fee, adjustment)."""

    payout = models.ForeignKey(Payout, on_delete=models.CASCADE, related_name="items")
    balance_transaction_id = models.CharField(max_length=100)
    # The processor's category (charge, refund, dispute, fee, adjustment...).
    category = models.CharField(max_length=40)
    # The charge, refund or dispute it is about (ch_..., re_..., dp_...).
    source_id = models.CharField(max_length=100, blank=True, default="")
    # The charge a refund or dispute belongs to, when the processor names it.
    charge_id = models.CharField(max_length=100, blank=True, default="")
    amount = models.DecimalField(**AMOUNT)
    fee = models.DecimalField(**AMOUNT, default=0)
    net = models.DecimalField(**AMOUNT)
    currency = models.CharField(max_length=3)
    description = models.CharField(max_length=300, blank=True, default="")
    payment = models.ForeignKey(
        "billing.Payment", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # The refund billing recorded for a refund item (by the processor's refund id), when known.
    refund = models.ForeignKey(
        "billing.Refund", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ("payout", "pk")
        constraints = [
            models.UniqueConstraint(
                fields=("payout", "balance_transaction_id"), name="payout_item_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.category} {self.amount} {self.currency}"
