"""Exact money arithmetic: ISO 4217 minor units, one half-up rounding rule, exact splitting.

Amounts are stored with 4 decimal places; document totals are rounded to the currency's minor
unit (JPY 0, USD 2, KWD 3) with ROUND_HALF_UP, and nowhere else is another rule used.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, localcontext
from functools import lru_cache
from typing import TypedDict

from moneyed import CURRENCIES, Money

from core.exceptions import DomainError

STORAGE_PLACES = 4
STORAGE_QUANTUM = Decimal(1).scaleb(-STORAGE_PLACES)


class DecimalOptions(TypedDict):
    """Shared ``DecimalField(**options)`` (typed, so the field's other arguments stay checked)."""

    max_digits: int
    decimal_places: int


# The largest amount one line, document, payment or entry line may carry: 12 integer digits.
# Stored columns hold 15, which leaves room for the total of a document's lines, its tax and
# its value in the functional currency at any rate below 1,000.
MAX_AMOUNT = Decimal("1e12")
# The largest quantity on one line (columns of quantities hold 10 integer digits).
MAX_QUANTITY = Decimal("1e9")


class UnknownCurrency(DomainError):
    code = "unknown_currency"


class InvalidAmount(DomainError):
    code = "invalid_amount"


@lru_cache(maxsize=512)
def minor_unit_exponent(currency: str) -> int:
    """Decimal places of the currency's minor unit in ISO 4217 (JPY 0, USD 2, KWD 3)."""
    try:
        sub_unit = CURRENCIES[currency].sub_unit
    except KeyError:
        raise UnknownCurrency(f"Unknown ISO 4217 currency {currency!r}.") from None
    exponent = 0
    while sub_unit > 1:
        sub_unit //= 10
        exponent += 1
    return exponent


def quantum(currency: str) -> Decimal:
    """The smallest amount of the currency as a Decimal (Decimal('0.01') for USD)."""
    return Decimal(1).scaleb(-minor_unit_exponent(currency))


def round_money(amount: Decimal, currency: str) -> Decimal:
    """Round to the currency's minor unit, half away from zero (the one rule used everywhere)."""
    return amount.quantize(quantum(currency), rounding=ROUND_HALF_UP)


def round_storage(amount: Decimal) -> Decimal:
    """Round to the 4 places amounts are stored with (half-up)."""
    return amount.quantize(STORAGE_QUANTUM, rounding=ROUND_HALF_UP)


def format_amount(amount: Decimal, currency: str) -> str:
    """The amount as people read it in that currency: "100.00 USD", "1999 JPY"."""
    return f"{round_money(amount, currency)} {currency}"


def money_text(value: Money) -> str:
    """A Money as screens and titles show it: "1,631.25 EUR", "15,000 JPY"."""
    currency = str(value.currency)
    try:
        places = minor_unit_exponent(currency)
    except DomainError:
        return f"{value.amount} {currency}"
    return f"{round_money(value.amount, currency):,.{places}f} {currency}"


def amount_text(amount: Decimal | None, currency: str) -> str:
    """``1,631.25 EUR``, ``15,000 JPY``: the currency's minor units, thousands separators."""
    if amount is None:
        return "-"
    return money_text(Money(amount, currency))


def unit_price_text(amount: Decimal, currency: str, *, grouped: bool = False) -> str:
    """A unit price with its own precision, never less than the currency's: 33.3367 USD
    stays "33.3367" (so 3 x 33.3367 = 100.01 reads true), 20 KWD reads "20.000";
    ``grouped``: with thousands separators, as screens show money ("1,250.00")."""
    places = minor_unit_exponent(currency)
    exponent = amount.normalize().as_tuple().exponent
    own = -exponent if isinstance(exponent, int) else places
    separator = "," if grouped else ""
    return f"{amount:{separator}.{max(places, own)}f}"


def to_money(amount: Decimal, currency: str) -> Money:
    """A Money rounded to the currency's minor unit."""
    return Money(round_money(amount, currency), currency)


def to_minor_units(amount: Decimal, currency: str) -> int:
    """Integer minor units for processors: USD 35.20 -> 3520, JPY 1999 -> 1999, KWD 18.600 -> 18600.

    Refuses an amount that is not already a whole number of minor units, rather than
    rounding money silently on its way out.
    """
    exponent = minor_unit_exponent(currency)
    scaled = amount.scaleb(exponent)
    if scaled != scaled.to_integral_value():
        raise InvalidAmount(f"{amount} has more decimals than {currency} allows ({exponent}).")
    return int(scaled)


def check_amount(
    amount: Decimal, currency: str, *, allow_negative: bool = False, field: str = "amount"
) -> Decimal:
    """Validate an amount that is posted: finite, within MAX_AMOUNT, in whole minor units of
    the currency (0.001 USD and 10.5 JPY are refused, never rounded), sign as allowed.
    The refusal names ``field``."""
    if not isinstance(amount, Decimal) or not amount.is_finite():
        raise InvalidAmount(f"{amount!r} is not a finite decimal amount.", field=field)
    if not allow_negative and amount < 0:
        raise InvalidAmount(f"{amount} must not be negative.", field=field)
    check_limit(amount, field=field)
    if amount != amount.quantize(quantum(currency), rounding=ROUND_HALF_UP):
        raise InvalidAmount(
            f"{amount} has more decimals than {currency} allows ({minor_unit_exponent(currency)}).",
            field=field,
        )
    return amount


def check_limit(value: Decimal, *, field: str, limit: Decimal = MAX_AMOUNT) -> Decimal:
    """``value`` if its size is below ``limit``; InvalidAmount naming the field and the limit.

    Check products (quantity x price) with this before rounding them: a 30-digit product
    cannot even be quantized in Decimal's default precision.
    """
    if abs(value) >= limit:
        raise InvalidAmount(
            f"{value:f} is too large: amounts must be below {limit:,f}.",
            code="amount_too_large",
            field=field,
            limit=f"{limit:f}",
        )
    return value


def allocate(
    total: Decimal,
    weights: Sequence[Decimal | int],
    currency: str | None = None,
    *,
    unit: Decimal | None = None,
) -> list[Decimal]:
    """Split ``total`` over ``weights`` in whole units; the parts always sum to ``total``.

    The unit is the currency's minor unit (or ``unit``, e.g. the 4 stored places). Largest
    remainder: each part gets its proportional share rounded toward zero, and the units left
    over go one each to the parts with the largest remainders (earlier parts first on ties).
    Used for payment allocation, proration and installments (RELIABILITY.md B4).
    """
    if not weights:
        raise ValueError("allocate needs at least one weight")
    if unit is None:
        if currency is None:
            raise ValueError("allocate needs a currency or a unit")
        unit = quantum(currency)
    weight_values = [Decimal(w) for w in weights]
    if any(w < 0 for w in weight_values):
        raise ValueError("weights must not be negative")
    weight_sum = sum(weight_values, Decimal(0))
    if weight_sum == 0:
        raise ValueError("weights must not all be zero")
    units_total = (total / unit).to_integral_value(rounding=ROUND_HALF_UP)
    if units_total * unit != total:
        raise InvalidAmount(f"{total} is not a whole number of units of {unit}.")
    sign = -1 if units_total < 0 else 1
    units_abs = abs(units_total)
    with localcontext() as ctx:
        # Enough digits that no share of a 25-digit amount is rounded before it is floored.
        ctx.prec = 100
        shares = [units_abs * w / weight_sum for w in weight_values]
        floors = [s.to_integral_value(rounding=ROUND_DOWN) for s in shares]
    left = int(units_abs - sum(floors, Decimal(0)))
    order = sorted(range(len(shares)), key=lambda i: (-(shares[i] - floors[i]), i))
    for i in order[:left]:
        floors[i] += 1
    return [(sign * f * unit).quantize(unit) for f in floors]


def split_evenly(total: Decimal, parts: int, currency: str) -> list[Decimal]:
    """Split ``total`` into ``parts`` near-equal amounts that sum exactly to it."""
    if parts < 1:
        raise ValueError("parts must be at least 1")
    return allocate(total, [1] * parts, currency)
