"""Pure pricing: what a price charges for a quantity, period arithmetic, proration."""

from __future__ import annotations

import calendar
from datetime import date
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from typing import Any

from billing.enums import BillingInterval, PriceType

ZERO = Decimal(0)
MONTHS = {BillingInterval.MONTH: 1, BillingInterval.QUARTER: 3, BillingInterval.YEAR: 12}


class PricingError(ValueError):
    pass


def price_amount(
    *,
    type: str,
    quantity: Decimal,
    unit_amount: Decimal | None = None,
    package_size: int | None = None,
    tiers: list[dict[str, Any]] | None = None,
) -> Decimal:
    """The unrounded amount a price charges for ``quantity`` units in one period."""
    if quantity < 0:
        raise PricingError("quantity must not be negative")
    if type == PriceType.FLAT:
        return unit_amount or ZERO
    if type == PriceType.PER_UNIT:
        return quantity * (unit_amount or ZERO)
    if type == PriceType.PACKAGE:
        if not package_size:
            raise PricingError("a package price needs a package size")
        packages = (quantity / package_size).to_integral_value(rounding=ROUND_CEILING)
        return packages * (unit_amount or ZERO)
    if type in (PriceType.TIERED_GRADUATED, PriceType.TIERED_VOLUME):
        return _tiered(type, quantity, tiers or [])
    raise PricingError(f"unknown price type {type!r}")


def _tiers(tiers: list[dict[str, Any]]) -> list[tuple[Decimal | None, Decimal, Decimal]]:
    parsed = []
    if not isinstance(tiers, list):
        raise PricingError("tiers must be a list")
    for n, tier in enumerate(tiers, start=1):
        if not isinstance(tier, dict):
            raise PricingError(f"tier {n} must be an object")
        up_to = tier.get("up_to")
        try:
            values = (
                None if up_to is None else Decimal(str(up_to)),
                Decimal(str(tier.get("unit_amount") or 0)),
                Decimal(str(tier.get("flat_amount") or 0)),
            )
        except (InvalidOperation, ValueError):
            raise PricingError(f"tier {n} has an amount that is not a number") from None
        if any(v is not None and (not v.is_finite() or v < 0) for v in values):
            raise PricingError(f"tier {n} has a negative or infinite amount")
        parsed.append(values)
    if not parsed or parsed[-1][0] is not None:
        raise PricingError("the last tier must be open-ended (up_to: null)")
    bounds = [t[0] for t in parsed[:-1]]
    if any(b is None for b in bounds) or bounds != sorted(bounds):  # type: ignore[type-var]
        raise PricingError("tiers must be in increasing up_to order")
    return parsed


def _tiered(type: str, quantity: Decimal, tiers: list[dict[str, Any]]) -> Decimal:
    parsed = _tiers(tiers)
    if type == PriceType.TIERED_VOLUME:
        # Every unit at the price of the tier the total falls in.
        for up_to, unit, flat in parsed:
            if up_to is None or quantity <= up_to:
                return quantity * unit + (flat if quantity > 0 else ZERO)
    total = ZERO
    lower = ZERO
    for up_to, unit, flat in parsed:
        if quantity <= lower:
            break
        in_tier = (quantity if up_to is None else min(quantity, up_to)) - lower
        total += in_tier * unit + flat
        if up_to is None:
            break
        lower = up_to
    return total


def add_months(start: date, months: int, anchor_day: int) -> date:
    """``start`` moved by ``months``, on the anchor day or the month's last day if shorter
    (anchor 31: Jan 31 -> Feb 28 -> Mar 31)."""
    month_index = start.month - 1 + months
    year = start.year + month_index // 12
    month = month_index % 12 + 1
    return date(year, month, min(anchor_day, calendar.monthrange(year, month)[1]))


def period_end(start: date, interval: str, anchor_day: int) -> date:
    """The exclusive end of the period that starts on ``start``."""
    return add_months(start, MONTHS[BillingInterval(interval)], anchor_day)


def prorate(amount: Decimal, *, days_used: int, days_in_period: int) -> Decimal:
    """``amount`` scaled to ``days_used`` of ``days_in_period`` (exact to the day, unrounded)."""
    if days_in_period <= 0 or not 0 <= days_used <= days_in_period:
        raise PricingError("days must be within the period")
    return amount * days_used / days_in_period
