"""Input fields for money: decimal strings only (RELIABILITY.md B2).

A JSON float has already lost exactness before the server sees it, and "1e3", "NaN" or
"Infinity" are not amounts anyone writes on an invoice: each is refused with a field error.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Any

from drf_spectacular.utils import extend_schema_field
from moneyed import CURRENCIES
from rest_framework import serializers
from rest_framework.fields import empty
from rest_framework.utils import html

from core.dates import DateKind, DateOutOfRange, date_check
from core.money import MAX_AMOUNT, MAX_QUANTITY, round_money, unit_price_text

# Up to 12 integer digits: every amount stays below core.money.MAX_AMOUNT.
AMOUNT_PATTERN = re.compile(r"^-?\d{1,12}(\.\d{1,4})?$")


@extend_schema_field(
    {"type": "string", "format": "decimal", "pattern": AMOUNT_PATTERN.pattern, "example": "125.50"}
)
class AmountField(serializers.Field):
    """A decimal string of up to 4 places and below ``max_value`` (MAX_AMOUNT by default)."""

    pattern = AMOUNT_PATTERN
    default_error_messages = {
        "type": 'Send amounts as a decimal string such as "12.50", not as a number.',
        "format": "Not a plain decimal amount (digits, an optional point and up to 4 decimals).",
        "negative": "Must not be negative.",
        "too_large": "Must be below {limit}.",
    }

    def __init__(
        self, *, allow_negative: bool = False, max_value: Decimal = MAX_AMOUNT, **kwargs: Any
    ) -> None:
        self.allow_negative = allow_negative
        self.max_value = max_value
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> Decimal:
        if not isinstance(data, str):
            self.fail("type")
        text = data.strip()
        if not self.pattern.match(text):
            self.fail("format")
        value = Decimal(text)
        if value < 0 and not self.allow_negative:
            self.fail("negative")
        if abs(value) >= self.max_value:
            self.fail("too_large", limit=f"{self.max_value:,f}")
        return value

    def to_representation(self, value: Decimal) -> str:
        return f"{value:f}"


@extend_schema_field(
    {
        "type": "string",
        "format": "decimal",
        "pattern": r"^\d{1,9}(\.\d{1,4})?$",
        "example": "3",
    }
)
class QuantityField(AmountField):
    """A quantity: a decimal string, not negative, below MAX_QUANTITY."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_value", MAX_QUANTITY)
        super().__init__(**kwargs)


# RFC 3339 full-date, what the schema's ``format: date`` means: ASCII digits, two-digit month
# and day. Python's own parsers also take 20261207, 2026-W49-1, 2026-1-5, "2026-12-07\n" and
# non-ASCII digits; none of those is a date a client of this API meant to send.
ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class DateField(serializers.DateField):
    """A date as YYYY-MM-DD and nothing else; every date of the API, in or out, is one."""

    default_error_messages = {
        "invalid": "Date has wrong format. Use YYYY-MM-DD.",
    }

    def get_value(self, dictionary: Any) -> Any:
        # DRF reads an empty query or form value of an optional field as absent: a filter
        # ?date_from= would then quietly filter nothing. An empty date is not a date.
        value = super().get_value(dictionary)
        if (
            value is empty
            and html.is_html_input(dictionary)
            and dictionary.get(self.field_name) == ""
        ):
            return ""
        return value

    def to_internal_value(self, value: Any) -> date:
        if isinstance(value, str) and not ISO_DATE.fullmatch(value):
            self.fail("invalid")
        return super().to_internal_value(value)


# Wide enough for any book, narrow enough that a year later is still a date.
FIRST_YEAR, LAST_YEAR = 1900, 2999
MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")
# What MonthField accepts, as the schema states it: MONTH with a month 01-12 of FIRST_YEAR to
# LAST_YEAR.
MONTH_IN_RANGE = r"^(19[0-9]{2}|2[0-9]{3})-(0[1-9]|1[0-2])$"


@extend_schema_field({"type": "string", "pattern": MONTH_IN_RANGE, "example": "2026-03"})
class MonthField(serializers.Field):
    """A calendar month as ``YYYY-MM``; internally its first day."""

    default_error_messages = {
        "format": "A month as YYYY-MM, e.g. 2026-03.",
        "range": f"A month from {FIRST_YEAR}-01 to {LAST_YEAR}-12.",
    }

    def to_internal_value(self, data: Any) -> date:
        match = MONTH.fullmatch(data) if isinstance(data, str) else None
        if match is None:
            self.fail("format")
        year, month = int(match[1]), int(match[2])
        if not 1 <= month <= 12:
            self.fail("format")
        if not FIRST_YEAR <= year <= LAST_YEAR:
            self.fail("range")
        return date(year, month, 1)

    def to_representation(self, value: date) -> str:
        return f"{value:%Y-%m}"


class BusinessDateField(DateField):
    """A business date (YYYY-MM-DD) inside the window of the system settings: not before the
    books start, not after today + the days ahead documents may take (``DateKind.RECEIVED``:
    not after today). Refused as a field error, never an overflow further down."""

    def __init__(self, *, kind: DateKind = DateKind.DOCUMENT, **kwargs: Any) -> None:
        self.kind = kind
        super().__init__(**kwargs)

    def to_internal_value(self, value: Any) -> date:
        result = super().to_internal_value(value)
        try:
            return date_check(result, field=self.field_name or "date", kind=self.kind)
        except DateOutOfRange as exc:
            raise serializers.ValidationError(exc.message, code=exc.code) from None


# ISO 4217 codes a CurrencyField accepts ("XXX" means no currency); one enum in the schema
# (SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]["CurrencyEnum"]).
CURRENCY_CODES = sorted(code for code in CURRENCIES if code != "XXX")


@extend_schema_field({"type": "string", "enum": CURRENCY_CODES, "example": "USD"})
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


@extend_schema_field({"type": "string", "format": "decimal", "example": "33.3367"})
class UnitPriceOutputField(serializers.Field):
    """A unit price out with its own precision (at least the currency's minor units), so that
    quantity x unit price = amount reads true for prices finer than a cent."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs["read_only"] = True
        super().__init__(**kwargs)

    def to_representation(self, value: Any) -> str:
        return unit_price_text(value.amount, str(value.currency))
