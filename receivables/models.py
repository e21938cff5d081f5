"""Collections: dunning policies and their steps, each invoice's collection timeline, pauses
and promises to pay, and late fees.

The timeline is written by ``receivables.services.collections`` only. Unique constraints make
the daily run safe to repeat or overlap: one event per (invoice, step), one late fee per
(invoice, fee number).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from djmoney.models.fields import MoneyField
from simple_history.models import HistoricalRecords

from billing.models import Customer, Invoice
from core.money import money_text
from receivables.enums import (
    CollectionEventOutcome,
    DunningAction,
    DunningTemplate,
    LateFeeStatus,
    PauseKind,
)

MONEY = {"max_digits": 19, "decimal_places": 4, "currency_field_name": "currency"}


class DunningPolicy(models.Model):
    """How invoices are chased. Empty overrides take the system settings
    (``billing.late_fee_percentage``, ``billing.collections_grace_period``)."""

    name = models.CharField(max_length=100, unique=True)
    # Exactly one default policy (a partial unique index): customers without one use it.
    is_default = models.BooleanField(default=False)
    late_fees_enabled = models.BooleanField(default=True)
    # Percent per 30 days overdue, e.g. 1.5; empty: billing.late_fee_percentage.
    late_fee_percentage = models.DecimalField(max_digits=7, decimal_places=4, null=True, blank=True)
    # Days past due before the first fee; empty: billing.collections_grace_period.
    grace_period_days = models.PositiveIntegerField(null=True, blank=True)
    # Whether unpaid earlier fees are part of the base of the next fee (off: no compounding).
    compound_fees = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    history = HistoricalRecords()

    class Meta:
        ordering = ("name",)
        verbose_name_plural = "dunning policies"
        constraints = [
            models.UniqueConstraint(
                fields=("is_default",),
                condition=Q(is_default=True),
                name="dunning_policy_one_default",
            ),
            models.CheckConstraint(
                condition=Q(late_fee_percentage__isnull=True)
                | Q(late_fee_percentage__gte=0, late_fee_percentage__lte=100),
                name="dunning_policy_fee_percentage_0_100",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class DunningStep(models.Model):
    """One step: ``offset_days`` relative to the due date (negative: before it)."""

    policy = models.ForeignKey(DunningPolicy, on_delete=models.PROTECT, related_name="steps")
    code = models.SlugField(max_length=40)
    name = models.CharField(max_length=100)
    offset_days = models.IntegerField()
    action = models.CharField(max_length=20, choices=DunningAction.choices)
    template = models.CharField(max_length=30, choices=DunningTemplate.choices)

    history = HistoricalRecords()

    class Meta:
        ordering = ("policy", "offset_days", "pk")
        constraints = [
            models.UniqueConstraint(fields=("policy", "code"), name="dunning_step_code_once"),
            models.UniqueConstraint(
                fields=("policy", "offset_days"), name="dunning_step_one_per_day"
            ),
        ]

    def __str__(self) -> str:
        sign = "+" if self.offset_days >= 0 else ""
        return f"{self.name} (due {sign}{self.offset_days}d)"


class CustomerDunningPolicy(models.Model):
    """A customer chased under another policy than the default."""

    customer = models.OneToOneField(
        Customer, on_delete=models.PROTECT, related_name="dunning_policy"
    )
    policy = models.ForeignKey(DunningPolicy, on_delete=models.PROTECT, related_name="+")

    history = HistoricalRecords()

    class Meta:
        verbose_name_plural = "customer dunning policies"

    def __str__(self) -> str:
        return f"{self.customer}: {self.policy}"


class CollectionEvent(models.Model):
    """One step on an invoice's collection timeline, recorded once (a repeated or overlapping
    run hits the unique constraint and does nothing). Append-only."""

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="collection_events")
    step = models.ForeignKey(DunningStep, on_delete=models.PROTECT, related_name="events")
    action = models.CharField(max_length=20, choices=DunningAction.choices)
    outcome = models.CharField(max_length=20, choices=CollectionEventOutcome.choices)
    # The day the step fell due (due date + offset) and the run date that performed it.
    scheduled_date = models.DateField()
    run_date = models.DateField()
    email_to = models.CharField(max_length=500, blank=True, default="")
    email_subject = models.CharField(max_length=300, blank=True, default="")
    email_body = models.TextField(blank=True, default="")
    detail = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ("invoice", "scheduled_date", "pk")
        permissions = [("run_collections", "Can run the collections run")]
        constraints = [
            models.UniqueConstraint(fields=("invoice", "step"), name="collection_event_once"),
        ]
        indexes = [models.Index(fields=("invoice", "-scheduled_date"))]

    def __str__(self) -> str:
        return f"{self.invoice}: {self.step.name} ({self.outcome})"


class CollectionPause(models.Model):
    """No dunning steps (and no late fees) for a customer or one invoice while active:
    from ``start_date`` through ``until_date`` (empty: until lifted). A promise to pay is a
    pause until the promised date."""

    kind = models.CharField(max_length=10, choices=PauseKind.choices, default=PauseKind.PAUSE)
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    invoice = models.ForeignKey(
        Invoice, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reason = models.CharField(max_length=300)
    start_date = models.DateField(default=timezone.localdate)
    until_date = models.DateField(null=True, blank=True)
    # For a promise: what the customer promised to pay (in the invoice's currency).
    currency = models.CharField(max_length=3, blank=True, default="")
    promised_amount = MoneyField(null=True, blank=True, **MONEY)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    lifted_at = models.DateTimeField(null=True, blank=True)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    history = HistoricalRecords()

    class Meta:
        ordering = ("-start_date", "-pk")
        constraints = [
            # A pause covers either one customer or one invoice.
            models.CheckConstraint(
                condition=Q(customer__isnull=False, invoice__isnull=True)
                | Q(customer__isnull=True, invoice__isnull=False),
                name="collection_pause_one_target",
            ),
            models.CheckConstraint(
                condition=~Q(kind=PauseKind.PROMISE) | Q(until_date__isnull=False),
                name="collection_promise_has_date",
            ),
            models.CheckConstraint(
                condition=Q(until_date__isnull=True) | Q(until_date__gte=models.F("start_date")),
                name="collection_pause_dates_ordered",
            ),
        ]

    def __str__(self) -> str:
        target = self.invoice or self.customer
        until = self.until_date.isoformat() if self.until_date else "lifted"
        return f"{self.get_kind_display()} {target} until {until}"


class LateFee(models.Model):
    """A late fee charged on an overdue invoice, itself a receivable: ``fee_invoice`` posted
    Dr AR / Cr late-fee income. One per (invoice, sequence): fee 1 after the grace period,
    fee n after n-1 further full 30 days."""

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="late_fees")
    sequence = models.PositiveIntegerField()
    fee_invoice = models.OneToOneField(
        Invoice, on_delete=models.PROTECT, related_name="late_fee_charge"
    )
    currency = models.CharField(max_length=3)
    # What was overdue on the charge date (earlier fees not included unless compounding).
    base_amount = MoneyField(**MONEY)
    percentage = models.DecimalField(max_digits=7, decimal_places=4)
    amount = MoneyField(**MONEY)
    days_overdue = models.PositiveIntegerField()
    charged_date = models.DateField()
    status = models.CharField(
        max_length=10, choices=LateFeeStatus.choices, default=LateFeeStatus.CHARGED
    )
    waived_at = models.DateTimeField(null=True, blank=True)
    waived_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    waive_reason = models.CharField(max_length=300, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    # Who waived and why, and every other change, kept.
    history = HistoricalRecords()

    class Meta:
        ordering = ("invoice", "sequence")
        permissions = [("waive_latefee", "Can waive late fees")]
        constraints = [
            models.UniqueConstraint(fields=("invoice", "sequence"), name="late_fee_once"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="late_fee_positive"),
            models.CheckConstraint(
                condition=~Q(status=LateFeeStatus.WAIVED) | ~Q(waive_reason=""),
                name="late_fee_waiver_has_reason",
            ),
        ]

    def __str__(self) -> str:
        return f"Late fee {self.sequence} on {self.invoice}: {money_text(self.amount)}"


class CollectionsWorklistItem(Invoice):
    """The admin's collections worklist: open overdue invoices (a proxy of billing's)."""

    class Meta:
        proxy = True
        verbose_name = "collections worklist item"
        verbose_name_plural = "collections worklist"


from receivables.models_disputes import *  # noqa: E402, F403
from receivables.models_plans import *  # noqa: E402, F403
