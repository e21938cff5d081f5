"""Form fields of the billing workspace: amounts typed as people write them ("1,631.25"),
tax rates as percentages, currency and country pickers from the ISO lists the project
already ships (py-moneyed's currencies, Babel's territory names)."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any

from babel import Locale
from babel.numbers import get_territory_currencies
from django import forms
from moneyed import CURRENCIES

# Babel's territories that are not countries (regions, the EU, test codes).
_NOT_COUNTRIES = {"EU", "EZ", "UN", "QO", "XA", "XB", "ZZ"}


@cache
def currency_choices() -> list[tuple[str, str]]:
    """ISO 4217 codes in use today (legal tender somewhere, per Babel's CLDR data) with their
    names: "EUR · Euro". Withdrawn currencies (ADP, DEM, ...) are not offered."""
    today = date.today()  # noqa: DTZ011 - which currencies are tender, not a timestamp
    current: set[str] = set()
    for territory in Locale("en").territories:
        if isinstance(territory, str) and len(territory) == 2 and territory.isalpha():
            current.update(get_territory_currencies(territory, today, tender=True))
    return sorted(
        (code, f"{code} · {currency.name}")
        for code, currency in CURRENCIES.items()
        if code in current and currency.name
    )


@cache
def country_choices() -> list[tuple[str, str]]:
    """ISO 3166 alpha-2 codes with their English names, by name."""
    territories = Locale("en").territories
    rows = [
        (code, f"{name} ({code})")
        for code, name in territories.items()
        if len(code) == 2 and code.isalpha() and code not in _NOT_COUNTRIES
    ]
    return sorted(rows, key=lambda row: row[1])


_AMOUNT = re.compile(r"^-?\d{1,3}(,\d{3})+(\.\d+)?$|^-?\d+(\.\d+)?$")


def parse_amount(text: str) -> Decimal | None:
    """``"1,631.25"``, ``"1631.25"``, ``" 15,000 "`` as a Decimal; None if it is no amount."""
    value = (text or "").strip().replace(" ", "").replace("\u00a0", "")
    if not _AMOUNT.match(value):
        return None
    try:
        return Decimal(value.replace(",", ""))
    except InvalidOperation:
        return None


class AmountInput(forms.CharField):
    """An amount as typed: thousands separators allowed, at most 4 decimals (the service
    checks the currency's minor units and says so in its own words)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault(
            "widget", forms.TextInput(attrs={"inputmode": "decimal", "maxlength": 30})
        )
        super().__init__(*args, **kwargs)

    # Its value is a Decimal, not the text the CharField it extends cleans to.
    def to_python(self, value: Any) -> Decimal | None:  # type: ignore[override]
        if isinstance(value, Decimal):
            return value
        text = str(super().to_python(value) or "")
        if text in self.empty_values:
            return None
        amount = parse_amount(text) if len(text) <= 30 else None
        if amount is None:
            raise forms.ValidationError("Enter an amount, such as 1,631.25.")
        if abs(amount) >= Decimal("1e15"):
            raise forms.ValidationError("That amount is too large.")
        if -amount.as_tuple().exponent > 4:  # type: ignore[operator]
            raise forms.ValidationError("An amount has at most 4 decimal places.")
        return amount

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, Decimal):
            return f"{value:f}"
        return value


class PercentField(forms.DecimalField):
    """A tax rate typed as a percentage (8.75) and cleaned to the fraction the models keep
    (0.0875); an initial fraction is shown as its percentage."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max_digits", 9)
        kwargs.setdefault("decimal_places", 4)
        kwargs.setdefault("min_value", Decimal(0))
        kwargs.setdefault("max_value", Decimal(100))
        kwargs.setdefault("widget", forms.NumberInput(attrs={"step": "any", "style": "width: 7em"}))
        super().__init__(*args, **kwargs)

    def clean(self, value: Any) -> Decimal | None:
        percent = super().clean(value)
        if percent is None:
            return None
        return (percent / 100).normalize()

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, Decimal):
            return f"{(value * 100).normalize():f}"
        return value


def percent_text(rate: Decimal) -> str:
    """0.0875 as "8.75 %"."""
    return f"{(rate * 100).normalize():f} %"
