"""Autopay: the schedule of automatic charges of one issued invoice.

Made in the transaction that issues an invoice of a customer (or subscription) set to charge
automatically; ``billing.services.autopay`` works it. Each try is a ``ProcessorAttempt``
whose idempotency key names the invoice and the try (``autopay_key``), so a repeated or
overlapping run, or a crash between the processor's answer and our write, charges once.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from billing.models.documents import Invoice


class AutopayStatus(models.TextChoices):
    # A try is due at ``next_attempt_at`` (or in flight): collections leave the invoice alone.
    SCHEDULED = "scheduled", "Scheduled"
    PAID = "paid", "Paid by autopay"
    # Nothing left to charge: paid another way, credited or voided.
    CLOSED = "closed", "Nothing left to charge"
    # A hard decline or no usable saved method: the customer was asked for another.
    STOPPED = "stopped", "Stopped"
    # Every retry of the schedule declined: collections take over.
    EXHAUSTED = "exhausted", "Retries exhausted"


def autopay_key(invoice_id: int, try_number: int) -> str:
    """The processor idempotency key of try ``try_number`` of an invoice's autopay."""
    return f"bo_autopay_inv{invoice_id}_try{try_number}"


class InvoiceAutopay(models.Model):
    """The automatic charging of one invoice: which try it is at and when the next is due."""

    invoice = models.OneToOneField(Invoice, on_delete=models.PROTECT, related_name="autopay")
    status = models.CharField(
        max_length=20, choices=AutopayStatus.choices, default=AutopayStatus.SCHEDULED
    )
    # The number of the latest try begun (0: none yet); its attempt's key is
    # ``autopay_key(invoice_id, tries)``.
    tries = models.PositiveSmallIntegerField(default=0)
    # When the schedule next looks at it (a try, or a check of one in flight); empty once done.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_failure_code = models.CharField(max_length=100, blank=True, default="")
    # Why it stopped, in words the customer's email and the clerk's screen show.
    stop_reason = models.CharField(max_length=300, blank=True, default="")
    # When the customer was told it failed (a hard decline, no method, or the last retry).
    customer_notified_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    history = HistoricalRecords()

    class Meta:
        ordering = ("-created_at", "-pk")
        verbose_name = "invoice autopay"
        verbose_name_plural = "invoice autopay"
        constraints = [
            models.CheckConstraint(
                condition=~Q(status=AutopayStatus.SCHEDULED) | Q(next_attempt_at__isnull=False),
                name="autopay_scheduled_has_next",
            ),
        ]
        indexes = [
            # The run's pick: scheduled and due, oldest first.
            models.Index(
                fields=("next_attempt_at",),
                condition=Q(status=AutopayStatus.SCHEDULED),
                name="autopay_due",
            ),
        ]

    def __str__(self) -> str:
        return f"Autopay of invoice {self.invoice_id} ({self.status}, try {self.tries})"


class CardExpiryReminder(models.Model):
    """A reminder sent to a customer on autopay that its default card expires soon; one per
    (card, expiry, days before), so a repeated or overlapping run sends nothing twice.
    Append-only."""

    payment_method = models.ForeignKey(
        "billing.PaymentMethod", on_delete=models.PROTECT, related_name="expiry_reminders"
    )
    # The card's last valid day (the end of its expiry month) and how many days before it
    # the reminder was due (the settings' ``card_expiry_reminder_days``).
    expires_on = models.DateField()
    days_before = models.PositiveSmallIntegerField()
    sent_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ("-sent_at", "-pk")
        constraints = [
            models.UniqueConstraint(
                fields=("payment_method", "expires_on", "days_before"),
                name="card_expiry_reminder_once",
            ),
        ]

    def __str__(self) -> str:
        return f"Expiry reminder for {self.payment_method_id}, {self.days_before} days before"
