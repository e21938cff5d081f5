"""Shared field options of the payables models."""

from __future__ import annotations

from django.conf import settings
from django.db import models

# One currency column per row; zero defaults are ``Decimal`` (see billing.models.documents).
MONEY = {"max_digits": 19, "decimal_places": 4, "currency_field_name": "currency"}
QUANTITY = {"max_digits": 14, "decimal_places": 4}


def user_fk(related_name: str = "+", *, null: bool = True) -> models.ForeignKey:
    return models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=null,
        blank=null,
        related_name=related_name,
    )
