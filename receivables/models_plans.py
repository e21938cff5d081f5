"""Payment plans: a customer's open invoices paid off in installments.

An installment plan covers a balance (the amount due on the invoices chosen, at creation) and
splits it into installments whose amounts sum exactly to it (largest remainder, B4). Written
by ``receivables.services.payment_plans`` only.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from djmoney.models.fields import MoneyField
from simple_history.models import HistoricalRecords

from billing.models import Customer, Invoice, Payment, PaymentMethod, ProcessorAttempt
from core.money import money_text

__all__ = [
    "Installment",
    "InstallmentCharge",
    "InstallmentReminder",
    "InstallmentStatus",
    "PaymentPlan",
    "PaymentPlanInvoice",
    "PaymentPlanStatus",
]

PLAN_MONEY = {"max_digits": 19, "decimal_places": 4, "currency_field_name": "currency"}


class PaymentPlanStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    COMPLETED = "completed", "Completed"
    DEFAULTED = "defaulted", "Defaulted"
    CANCELED = "canceled", "Canceled"


class InstallmentStatus(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    # Past its due date and not paid; the plan defaults when it stays so past the grace days.
    OVERDUE = "overdue", "Overdue"
    PAID = "paid", "Paid"
    MISSED = "missed", "Missed (plan defaulted)"
    CANCELED = "canceled", "Canceled"


class PaymentPlan(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="payment_plans")
    currency = models.CharField(max_length=3)
    # The balance covered: the amount due on the plan's invoices when it was made.
    total = MoneyField(**PLAN_MONEY)
    # Paid through the plan so far; installments are paid in sequence order out of it.
    amount_paid = MoneyField(default=0, **PLAN_MONEY)
    status = models.CharField(
        max_length=10, choices=PaymentPlanStatus.choices, default=PaymentPlanStatus.ACTIVE
    )
    invoices: models.ManyToManyField[Invoice, PaymentPlanInvoice] = models.ManyToManyField(
        Invoice, through="PaymentPlanInvoice", related_name="payment_plans"
    )
    first_due_date = models.DateField()
    # Days between installments; empty: monthly on the first due date's day.
    interval_days = models.PositiveIntegerField(null=True, blank=True)
    # The saved method installments are charged to; empty: the customer's default one.
    payment_method = models.ForeignKey(
        PaymentMethod, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # Days after an installment's due date to charge again after a failed charge, e.g.
    # [1, 3, 7]; empty: RECEIVABLES_INSTALLMENT_RETRY_DAYS (default 1, 3, 7).
    retry_days = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    closed_at = models.DateTimeField(null=True, blank=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ("-created_at", "-pk")
        constraints = [
            models.CheckConstraint(condition=Q(total__gt=0), name="payment_plan_total_positive"),
            models.CheckConstraint(
                condition=Q(amount_paid__gte=0, amount_paid__lte=models.F("total")),
                name="payment_plan_paid_within_total",
            ),
            models.CheckConstraint(
                condition=Q(interval_days__isnull=True) | Q(interval_days__gt=0),
                name="payment_plan_interval_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"Plan {self.pk} for {self.customer}: {money_text(self.total)}"


class PaymentPlanInvoice(models.Model):
    """An invoice covered by a plan, with what was due on it when the plan was made."""

    plan = models.ForeignKey(PaymentPlan, on_delete=models.PROTECT, related_name="plan_invoices")
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="+")
    currency = models.CharField(max_length=3)
    amount = MoneyField(**PLAN_MONEY)

    class Meta:
        ordering = ("plan", "invoice__due_date", "invoice_id")
        constraints = [
            models.UniqueConstraint(fields=("plan", "invoice"), name="payment_plan_invoice_once"),
        ]

    def __str__(self) -> str:
        return f"{self.plan_id}: {self.invoice_id}"


class Installment(models.Model):
    plan = models.ForeignKey(PaymentPlan, on_delete=models.PROTECT, related_name="installments")
    sequence = models.PositiveIntegerField()
    due_date = models.DateField()
    currency = models.CharField(max_length=3)
    amount = MoneyField(**PLAN_MONEY)
    status = models.CharField(
        max_length=10, choices=InstallmentStatus.choices, default=InstallmentStatus.SCHEDULED
    )
    # Collection attempts (charges, when automatic) and the last one.
    attempts = models.PositiveIntegerField(default=0)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    paid_date = models.DateField(null=True, blank=True)
    # The payment that completed this installment.
    paid_payment = models.ForeignKey(
        Payment, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    history = HistoricalRecords()

    class Meta:
        ordering = ("plan", "sequence")
        constraints = [
            models.UniqueConstraint(fields=("plan", "sequence"), name="installment_sequence_once"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="installment_amount_positive"),
            models.CheckConstraint(
                condition=~Q(status="paid") | Q(paid_date__isnull=False),
                name="installment_paid_has_date",
            ),
        ]
        indexes = [models.Index(fields=("status", "due_date"))]

    def __str__(self) -> str:
        return f"Installment {self.sequence} of plan {self.plan_id}: {money_text(self.amount)}"


class InstallmentCharge(models.Model):
    """One automatic charge of an installment on a saved method: try ``attempt_number`` of
    its retry schedule. One per (installment, try), and its idempotency key is the processor
    attempt's, so a repeated or overlapping run charges once. Append-only but for
    ``settled_at``, stamped when a success has been counted toward the plan."""

    installment = models.ForeignKey(Installment, on_delete=models.PROTECT, related_name="charges")
    attempt_number = models.PositiveSmallIntegerField()
    # The day the schedule set for this try, and the day of the run that made it.
    scheduled_date = models.DateField()
    charged_date = models.DateField()
    idempotency_key = models.CharField(max_length=100, unique=True)
    attempt = models.OneToOneField(
        ProcessorAttempt, on_delete=models.PROTECT, related_name="installment_charge"
    )
    settled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ("installment", "attempt_number")
        constraints = [
            models.UniqueConstraint(
                fields=("installment", "attempt_number"), name="installment_charge_once"
            ),
            models.CheckConstraint(
                condition=Q(attempt_number__gte=1), name="installment_charge_number_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"Charge {self.attempt_number} of {self.installment}"


class InstallmentReminder(models.Model):
    """A reminder sent before an installment is due; one per (installment, kind), so a
    repeated or overlapping run sends nothing twice. Append-only."""

    installment = models.ForeignKey(Installment, on_delete=models.PROTECT, related_name="reminders")
    kind = models.CharField(max_length=20, default="before_due")
    days_before = models.PositiveIntegerField()
    sent_date = models.DateField()
    email_to = models.CharField(max_length=500)
    email_subject = models.CharField(max_length=300)
    email_body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ("installment", "kind")
        constraints = [
            models.UniqueConstraint(
                fields=("installment", "kind"), name="installment_reminder_once"
            ),
        ]

    def __str__(self) -> str:
        return f"Reminder for {self.installment} ({self.sent_date:%Y-%m-%d})"
