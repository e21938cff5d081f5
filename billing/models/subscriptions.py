"""Subscriptions, their items, metered usage and items waiting for the next invoice."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django_fsm import FSMField, FSMModelMixin, transition
from simple_history.models import HistoricalRecords

from billing.enums import SubscriptionStatus
from billing.models.catalog import Price
from billing.models.documents import Customer, Invoice

BILLABLE = (SubscriptionStatus.TRIALING, SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE)


class Subscription(FSMModelMixin, models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="subscriptions")
    currency = models.CharField(max_length=3)
    interval = models.CharField(max_length=10)
    status = FSMField(
        max_length=12,
        choices=SubscriptionStatus.choices,
        default=SubscriptionStatus.ACTIVE,
        protected=True,
    )
    # Periods start on this day of the month (clamped to short months).
    anchor_day = models.PositiveSmallIntegerField()
    started_on = models.DateField()
    # The period not yet invoiced: [current_period_start, current_period_end).
    current_period_start = models.DateField()
    current_period_end = models.DateField()
    trial_end = models.DateField(null=True, blank=True)
    cancel_at_period_end = models.BooleanField(default=False)
    canceled_at = models.DateTimeField(null=True, blank=True)
    ended_on = models.DateField(null=True, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    # Whether its invoices are charged automatically; empty: as its customer's ``autopay``.
    autopay = models.BooleanField(
        null=True,
        blank=True,
        help_text="Charge its invoices automatically; empty: as the customer is set.",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ("-created_at", "-pk")
        permissions = [("run_billing", "Can run the billing run")]
        constraints = [
            models.CheckConstraint(
                condition=Q(current_period_end__gt=models.F("current_period_start")),
                name="subscription_period_not_empty",
            ),
            models.CheckConstraint(
                condition=Q(anchor_day__gte=1, anchor_day__lte=31), name="subscription_anchor_day"
            ),
        ]
        indexes = [models.Index(fields=("status", "current_period_end"))]

    def __str__(self) -> str:
        return f"Subscription {self.pk} of {self.customer}"

    @transition(field=status, source=SubscriptionStatus.TRIALING, target=SubscriptionStatus.ACTIVE)
    def end_trial(self) -> None:
        pass

    @transition(
        field=status,
        source=[SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE],
        target=SubscriptionStatus.PAUSED,
    )
    def pause(self) -> None:
        self.paused_at = timezone.now()

    @transition(field=status, source=SubscriptionStatus.PAUSED, target=SubscriptionStatus.ACTIVE)
    def resume(self) -> None:
        self.paused_at = None

    @transition(field=status, source=SubscriptionStatus.ACTIVE, target=SubscriptionStatus.PAST_DUE)
    def mark_past_due(self) -> None:
        pass

    @transition(field=status, source=SubscriptionStatus.PAST_DUE, target=SubscriptionStatus.ACTIVE)
    def mark_current(self) -> None:
        pass

    @transition(
        field=status,
        source=[
            SubscriptionStatus.TRIALING,
            SubscriptionStatus.ACTIVE,
            SubscriptionStatus.PAST_DUE,
            SubscriptionStatus.PAUSED,
        ],
        target=SubscriptionStatus.CANCELED,
    )
    def cancel(self, *, ended_on: object) -> None:
        self.canceled_at = timezone.now()
        self.ended_on = ended_on  # type: ignore[assignment]


class SubscriptionItem(models.Model):
    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="items")
    price = models.ForeignKey(Price, on_delete=models.PROTECT, related_name="+")
    quantity = models.DecimalField(max_digits=19, decimal_places=4, default=Decimal(1))
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    history = HistoricalRecords()

    class Meta:
        ordering = ("pk",)
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gte=0), name="subscription_item_qty"),
        ]

    def __str__(self) -> str:
        return f"{self.price} x {self.quantity}"


class UsageEvent(models.Model):
    """One metered event. Billed once, on the first invoice after it arrives whose period
    covers it, or, when it arrives late for a closed period, on the next invoice."""

    item = models.ForeignKey(SubscriptionItem, on_delete=models.PROTECT, related_name="usage")
    metric = models.CharField(max_length=60)
    quantity = models.DecimalField(max_digits=19, decimal_places=4)
    # For unique counts: the thing counted (a user id, a device id).
    value = models.CharField(max_length=200, blank=True, default="")
    occurred_at = models.DateTimeField()
    # A resent batch cannot count an event twice.
    idempotency_key = models.CharField(max_length=200, unique=True)
    invoice = models.ForeignKey(
        Invoice, on_delete=models.PROTECT, null=True, blank=True, related_name="usage_events"
    )
    received_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ("occurred_at", "pk")
        indexes = [models.Index(fields=("item", "invoice", "occurred_at"))]

    def __str__(self) -> str:
        return f"{self.metric} {self.quantity} at {self.occurred_at:%Y-%m-%d %H:%M}"


class PendingItem(models.Model):
    """An amount waiting for the customer's next invoice (proration credit or charge)."""

    subscription = models.ForeignKey(
        Subscription, on_delete=models.PROTECT, related_name="pending_items"
    )
    currency = models.CharField(max_length=3)
    description = models.CharField(max_length=500)
    # Already rounded to the currency; negative for credits.
    amount = models.DecimalField(max_digits=19, decimal_places=4)
    tax_inclusive = models.BooleanField(default=False)
    period_start = models.DateField(null=True, blank=True)
    period_end = models.DateField(null=True, blank=True)
    invoice = models.ForeignKey(
        Invoice, on_delete=models.PROTECT, null=True, blank=True, related_name="pending_items"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ("pk",)

    def __str__(self) -> str:
        return self.description
