"""Shared field definitions of the reconciliation models."""

from __future__ import annotations

from django.conf import settings
from django.db import models

AMOUNT = {"max_digits": 19, "decimal_places": 4}


def user_fk(related_name: str = "+") -> models.ForeignKey:
    """Who did something: kept when the user is deactivated (PROTECT), empty for the system."""
    return models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name=related_name,
    )
