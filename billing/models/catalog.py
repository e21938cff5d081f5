"""The catalog: products and their prices (flat, per unit, tiered, package; metered)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from billing.enums import Aggregation, BillingInterval, PriceType


class Product(models.Model):
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    history = HistoricalRecords()

    class Meta:
        ordering = ("name", "pk")

    def __str__(self) -> str:
        return self.name


class Price(models.Model):
    """What a product costs per billing interval in one currency.

    ``unit_amount`` is the flat fee (flat), the price of one unit (per unit) or of one package
    (package). ``tiers`` is a list of ``{"up_to": int | None, "unit_amount": "1.00",
    "flat_amount": "0"}`` ordered by ``up_to`` (the last ``None``), for tiered prices. A
    metered price is billed in arrears from usage events of ``metric``, aggregated by
    ``aggregation`` over the period.
    """

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="prices")
    nickname = models.CharField(max_length=100, blank=True, default="")
    currency = models.CharField(max_length=3)
    type = models.CharField(max_length=20, choices=PriceType.choices)
    unit_amount = models.DecimalField(max_digits=19, decimal_places=4, null=True, blank=True)
    package_size = models.PositiveIntegerField(null=True, blank=True)
    tiers = models.JSONField(default=list, blank=True)
    interval = models.CharField(max_length=10, choices=BillingInterval.choices)
    tax_inclusive = models.BooleanField(default=False)
    metric = models.CharField(max_length=60, blank=True, default="")
    aggregation = models.CharField(
        max_length=12, choices=Aggregation.choices, blank=True, default=""
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    history = HistoricalRecords()

    class Meta:
        ordering = ("product", "currency", "pk")
        constraints = [
            models.CheckConstraint(
                condition=Q(unit_amount__isnull=True) | Q(unit_amount__gte=0),
                name="price_unit_amount_not_negative",
            ),
            models.CheckConstraint(
                condition=~Q(type="package") | Q(package_size__gt=0),
                name="price_package_has_size",
            ),
            models.CheckConstraint(
                condition=Q(metric="") | ~Q(aggregation=""), name="price_metered_has_aggregation"
            ),
        ]

    def __str__(self) -> str:
        label = self.nickname or self.product.name
        return f"{label} ({self.currency}/{self.interval})"

    @property
    def is_metered(self) -> bool:
        return bool(self.metric)
