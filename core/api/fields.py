"""Input fields for money: decimal strings only (RELIABILITY.md B2).

A JSON float has already lost exactness before the server sees it, and "1e3", "NaN" or
"Infinity" are not amounts anyone writes on an invoice: each is refused with a field error.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from drf_spectacular.utils import extend_schema_field
from moneyed import CURRENCIES
from rest_framework import serializers

from core.money import round_money

AMOUNT_PATTERN = re.compile(r"^-?\d{1,15}(\.\d{1,4})?$")


@extend_schema_field(
    {"type": "string", "format": "decimal", "pattern": AMOUNT_PATTERN.pattern, "example": "125.50"}
)
class AmountField(serializers.Field):
    default_error_messages = {
        "type": 'Send amounts as a decimal string such as "12.50", not as a number.',
        "format": "Not a plain decimal amount (digits, an optional point and up to 4 decimals).",
        "negative": "Must not be negative.",
    }

    def __init__(self, *, allow_negative: bool = False, **kwargs: Any) -> None:
        self.allow_negative = allow_negative
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> Decimal:
        if not isinstance(data, str):
            self.fail("type")
        text = data.strip()
        if not AMOUNT_PATTERN.match(text):
            self.fail("format")
        value = Decimal(text)
        if value < 0 and not self.allow_negative:
            self.fail("negative")
        return value

    def to_representation(self, value: Decimal) -> str:
        return f"{value:f}"


class CurrencyField(serializers.CharField):
    default_error_messages = {"unknown": "Unknown ISO 4217 currency code {value!r}."}

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 3)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data).upper()
        if value not in CURRENCIES or value == "XXX":
            self.fail("unknown", value=value)
        return value


@extend_schema_field({"type": "string", "format": "decimal", "example": "125.50"})
class MoneyOutputField(serializers.Field):
    """A Money out as a decimal string in its currency's minor units ("12.50", "1999")."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs["read_only"] = True
        super().__init__(**kwargs)

    def to_representation(self, value: Any) -> str:
        return f"{round_money(value.amount, str(value.currency)):f}"
