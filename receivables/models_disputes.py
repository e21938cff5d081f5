"""Disputes: a customer contests an invoice or part of it, or a card chargeback arrives from
Stripe. Written by ``receivables.services.disputes`` only."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django_fsm import FSMField, FSMModelMixin, transition
from djmoney.models.fields import MoneyField
from simple_history.models import HistoricalRecords

from billing.models import Customer, Invoice, Payment, Refund, WebhookEvent
from core.money import money_text

__all__ = ["ChargebackEvent", "Dispute", "DisputeStatus"]

MONEY = {"max_digits": 19, "decimal_places": 4, "currency_field_name": "currency"}


class DisputeStatus(models.TextChoices):
    OPEN = "open", "Open"
    UNDER_REVIEW = "under_review", "Under review"
    RESOLVED_UPHELD = "resolved_upheld", "Resolved: upheld"
    RESOLVED_REJECTED = "resolved_rejected", "Resolved: rejected"


ACTIVE_DISPUTE_STATUSES = (DisputeStatus.OPEN, DisputeStatus.UNDER_REVIEW)


class Dispute(FSMModelMixin, models.Model):
    """What is contested and how it ended. While open or under review the invoice's dunning
    is paused. Upheld: a credit note for the amount (or, for a lost chargeback, the reversal
    of the payment and the fee); rejected: nothing posted."""

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="disputes")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="disputes")
    currency = models.CharField(max_length=3)
    # At most the invoice's total (checked by the service: it spans two tables).
    amount = MoneyField(**MONEY)
    reason = models.CharField(max_length=500)
    status = FSMField(
        max_length=20, choices=DisputeStatus.choices, default=DisputeStatus.OPEN, protected=True
    )
    opened_at = models.DateTimeField(default=timezone.now, editable=False)
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    resolution_note = models.TextField(blank=True, default="")
    credit_note = models.OneToOneField(
        "billing.CreditNote",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="dispute",
    )
    # Chargebacks: Stripe's dispute id (one Dispute per id), the charge's payment, the
    # deadline for evidence and Stripe's own status of it.
    stripe_dispute_id = models.CharField(max_length=200, null=True, blank=True, unique=True)
    payment = models.ForeignKey(
        Payment, on_delete=models.PROTECT, null=True, blank=True, related_name="disputes"
    )
    evidence_due_by = models.DateTimeField(null=True, blank=True)
    processor_status = models.CharField(max_length=40, blank=True, default="")
    # A lost chargeback: the payment's reversal (a refund under the dispute id) and the fee.
    reversal = models.OneToOneField(
        Refund, on_delete=models.PROTECT, null=True, blank=True, related_name="dispute"
    )
    fee_entry = models.ForeignKey(
        "ledger.JournalEntry", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    history = HistoricalRecords()

    class Meta:
        ordering = ("-opened_at", "-pk")
        permissions = [
            ("review_dispute", "Can put disputes under review"),
            ("resolve_dispute", "Can resolve disputes"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="dispute_amount_positive"),
            models.CheckConstraint(
                condition=~Q(
                    status__in=[DisputeStatus.RESOLVED_UPHELD, DisputeStatus.RESOLVED_REJECTED]
                )
                | Q(resolved_at__isnull=False),
                name="dispute_resolved_has_date",
            ),
        ]
        indexes = [models.Index(fields=("invoice", "status"), name="dispute_invoice_status_idx")]

    def __str__(self) -> str:
        return (
            f"Dispute {self.pk} on {self.invoice}: {money_text(self.amount)} "
            f"({self.get_status_display().lower()})"
        )

    @transition(field=status, source=DisputeStatus.OPEN, target=DisputeStatus.UNDER_REVIEW)
    def review(self, *, by: object = None) -> None:
        self.reviewed_at = timezone.now()
        self.reviewed_by = by  # type: ignore[assignment]

    @transition(
        field=status, source=DisputeStatus.UNDER_REVIEW, target=DisputeStatus.RESOLVED_UPHELD
    )
    def uphold(self, *, by: object = None, note: str = "") -> None:
        self.resolved_at = timezone.now()
        self.resolved_by = by  # type: ignore[assignment]
        self.resolution_note = note

    @transition(
        field=status, source=DisputeStatus.UNDER_REVIEW, target=DisputeStatus.RESOLVED_REJECTED
    )
    def reject(self, *, by: object = None, note: str = "") -> None:
        self.resolved_at = timezone.now()
        self.resolved_by = by  # type: ignore[assignment]
        self.resolution_note = note


class ChargebackEvent(models.Model):
    """A stored Stripe ``charge.dispute.*`` webhook event applied to the disputes: one row per
    event (the marker that it is done), written in the same transaction as its effects."""

    webhook_event = models.OneToOneField(
        WebhookEvent, on_delete=models.PROTECT, related_name="chargeback_applied"
    )
    dispute = models.ForeignKey(
        Dispute, on_delete=models.PROTECT, null=True, blank=True, related_name="events"
    )
    applied_at = models.DateTimeField(default=timezone.now)
    outcome = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ("-applied_at", "-pk")

    def __str__(self) -> str:
        return f"{self.webhook_event}: {self.outcome}"
