"""FX rates: which rate covers a date, and conversion with it."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from moneyed import CURRENCIES

from core.dates import DateKind, date_check
from core.exceptions import Conflict, DomainError, PermissionDeniedError
from core.models import FxRate
from core.money import UnknownCurrency, minor_unit_exponent, round_money, round_storage

RATE_PLACES = Decimal("1e-10")
# FxRate.rate is numeric(24, 10): at most 14 digits before the point.
RATE_LIMIT = Decimal("1e14")
SOURCE_LENGTH = 60


class FxRateMissing(DomainError):
    code = "fx_rate_missing"


class FxRateInvalid(DomainError):
    code = "fx_rate_invalid"


class FxRateExists(Conflict):
    """Another rate is recorded for the pair and day: rates are never changed."""

    code = "fx_rate_exists"


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


def fx_rate_list(
    *,
    base_currency: str | None = None,
    quote_currency: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    source: str | None = None,
) -> QuerySet[FxRate]:
    """Rates newest first, filtered by pair, a range of rate dates and source."""
    qs = FxRate.objects.all()
    if base_currency:
        qs = qs.filter(base_currency=base_currency)
    if quote_currency:
        qs = qs.filter(quote_currency=quote_currency)
    if date_from:
        qs = qs.filter(rate_date__gte=date_from)
    if date_to:
        qs = qs.filter(rate_date__lte=date_to)
    if source:
        qs = qs.filter(source=source)
    return qs.order_by("-rate_date", "base_currency", "quote_currency", "-id")


def _currency_check(value: str, field: str) -> str:
    if value not in CURRENCIES or value == "XXX":
        raise UnknownCurrency(f"Unknown ISO 4217 currency {value!r}.", field=field)
    return value


def _rate_check(rate: Any) -> Decimal:
    if not isinstance(rate, Decimal) or not rate.is_finite() or rate <= 0:
        raise FxRateInvalid(f"An FX rate must be a positive number, got {rate}.", field="rate")
    if rate >= RATE_LIMIT:
        raise FxRateInvalid(f"An FX rate must be below {RATE_LIMIT:,f}, got {rate}.", field="rate")
    if rate != rate.quantize(RATE_PLACES):
        raise FxRateInvalid(f"An FX rate has at most 10 decimal places, got {rate}.", field="rate")
    return rate


def fx_rate_create(
    *,
    actor: Any,
    base_currency: str,
    quote_currency: str,
    rate: Decimal,
    rate_date: date,
    source: str = "manual",
) -> tuple[FxRate, bool]:
    """Record ``1 base = rate quote`` from ``rate_date`` on: ``(rate, created)``.

    Idempotent: the same pair, day, rate and source again returns the row first recorded
    (``created`` False). A recorded rate is never changed, as postings may have been
    converted with it: another rate or source for the same pair and day is refused
    (``fx_rate_exists``, naming the rate on record); a correction is a new rate with its own
    date. Bad input is refused naming its field.
    """
    if actor is None or not actor.has_perm("core.add_fxrate"):
        raise PermissionDeniedError("You may not record FX rates.")
    base = _currency_check(base_currency, "base_currency")
    quote = _currency_check(quote_currency, "quote_currency")
    if base == quote:
        raise FxRateInvalid(
            f"An FX rate needs two different currencies, got {base} twice.",
            field="quote_currency",
        )
    rate = _rate_check(rate)
    date_check(rate_date, field="rate_date", kind=DateKind.DOCUMENT)
    source = source.strip()
    if not source or len(source) > SOURCE_LENGTH:
        raise FxRateInvalid(
            f"The source is 1 to {SOURCE_LENGTH} characters (e.g. ecb, treasury).",
            field="source",
        )
    key = {"base_currency": base, "quote_currency": quote, "rate_date": rate_date}
    existing = FxRate.objects.filter(**key).first()
    if existing is None:
        try:
            with transaction.atomic():
                return FxRate.objects.create(
                    **key, rate=rate.quantize(RATE_PLACES), source=source
                ), True
        except IntegrityError:
            # A concurrent request recorded the pair and day first: compare with it.
            existing = FxRate.objects.get(**key)
    if existing.rate == rate and existing.source == source:
        return existing, False
    raise FxRateExists(
        f"{base}/{quote} on {rate_date.isoformat()} is already recorded: rate {existing.rate} "
        f"from {existing.source!r} (FX rate {existing.pk}). A recorded rate is never changed; "
        "record a correction as a new rate with its own date.",
        fx_rate=existing.pk,
        rate=f"{existing.rate}",
        source=existing.source,
    )
