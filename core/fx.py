"""FX rates: which rate covers a date, and conversion with it."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db import transaction

from core.exceptions import DomainError
from core.models import FxRate
from core.money import minor_unit_exponent, round_money, round_storage

RATE_PLACES = Decimal("1e-10")


class FxRateMissing(DomainError):
    code = "fx_rate_missing"


def _max_age() -> timedelta:
    return timedelta(days=getattr(settings, "FX_RATE_MAX_AGE_DAYS", 7))


def fx_rate_get(*, base: str, quote: str, on_date: date) -> Decimal:
    """The rate (1 base = rate quote) in force on ``on_date``.

    The newest rate dated on or before the date, direct or inverse, and no older than
    ``FX_RATE_MAX_AGE_DAYS``; otherwise FxRateMissing names the pair and the date.
    """
    if base == quote:
        return Decimal(1)
    minor_unit_exponent(base)
    minor_unit_exponent(quote)
    oldest = on_date - _max_age()
    candidates = list(
        FxRate.objects.filter(
            base_currency__in=(base, quote),
            quote_currency__in=(base, quote),
            rate_date__lte=on_date,
            rate_date__gte=oldest,
        )
        .order_by("-rate_date", "-id")
        .values_list("base_currency", "rate", "rate_date")[:2]
    )
    # The newest wins; on the same day a direct quote beats an inverse one.
    newest = [(b, r, d) for b, r, d in candidates if d == candidates[0][2]] if candidates else []
    for rate_base, rate, _ in newest:
        if rate_base == base:
            return rate
    if newest:
        return (Decimal(1) / newest[0][1]).quantize(RATE_PLACES, rounding=ROUND_HALF_UP)
    raise FxRateMissing(
        f"No {base}/{quote} FX rate covers {on_date.isoformat()} "
        f"(none dated between {oldest.isoformat()} and {on_date.isoformat()}).",
        base=base,
        quote=quote,
        date=on_date.isoformat(),
    )


def fx_convert(
    *, amount: Decimal, from_currency: str, to_currency: str, on_date: date, exact: bool = False
) -> Decimal:
    """Convert at the rate in force on ``on_date``; rounded to the target currency's minor
    unit, or to the 4 stored places when ``exact`` (ledger functional amounts)."""
    rate = fx_rate_get(base=from_currency, quote=to_currency, on_date=on_date)
    converted = amount * rate
    return round_storage(converted) if exact else round_money(converted, to_currency)


def fx_rate_set(
    *, base: str, quote: str, rate: Decimal, rate_date: date, source: str = "manual"
) -> FxRate:
    """Record the rate for a day (replacing that day's rate from the same pair)."""
    minor_unit_exponent(base)
    minor_unit_exponent(quote)
    if base == quote:
        raise DomainError("An FX rate needs two different currencies.", code="fx_rate_invalid")
    if not rate.is_finite() or rate <= 0:
        raise DomainError(f"An FX rate must be positive, got {rate}.", code="fx_rate_invalid")
    with transaction.atomic():
        fx, _ = FxRate.objects.update_or_create(
            base_currency=base,
            quote_currency=quote,
            rate_date=rate_date,
            defaults={"rate": rate, "source": source},
        )
    return fx
