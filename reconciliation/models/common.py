"""Shared field definitions of the reconciliation models."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models

from core.money import DecimalOptions

if TYPE_CHECKING:
    from django.contrib.auth.models import User
    from django.db.models.expressions import Combinable

AMOUNT: DecimalOptions = {"max_digits": 19, "decimal_places": 4}


def user_fk(related_name: str = "+") -> models.ForeignKey[User | Combinable | None, User | None]:
    """Who did something: kept when the user is deactivated (PROTECT), empty for the system."""
    return models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name=related_name,
    )
