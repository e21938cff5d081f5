"""Shared field options of the payables models."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, overload

from django.conf import settings
from django.db import models

from core.money import DecimalOptions

if TYPE_CHECKING:
    from django.contrib.auth.models import User
    from django.db.models.expressions import Combinable

# One currency column per row; zero defaults are ``Decimal`` (see billing.models.documents).
MONEY = {"max_digits": 19, "decimal_places": 4, "currency_field_name": "currency"}
QUANTITY: DecimalOptions = {"max_digits": 14, "decimal_places": 4}


@overload
def user_fk(
    related_name: str = "+", *, null: Literal[True] = True
) -> models.ForeignKey[User | Combinable | None, User | None]: ...
@overload
def user_fk(
    related_name: str = "+", *, null: Literal[False]
) -> models.ForeignKey[User | Combinable, User]: ...
def user_fk(related_name: str = "+", *, null: bool = True) -> models.ForeignKey[Any, Any]:
    return models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=null,
        blank=null,
        related_name=related_name,
    )
