"""Revenue forecast per month and currency: contracted subscription revenue, the usage run-rate,
and the churn history, with a low / expected / high band.

Reads only. Month 1 is the calendar month after ``as_of``'s. Per month:

- contracted: the monthly recurring revenue (licensed prices net of tax, a quarterly or yearly
  price spread over its months) of every subscription live on the month's first day: started,
  out of its trial, not paused, not ended, and not cancelling at the end of a period that ends
  by then (the scheduled cancellations and trial ends are known today);
- usage: the run-rate of metered usage, priced as billing prices it, over the three calendar
  months before ``as_of``'s month (mean for expected, lowest and highest for the band);
- churn: over the twelve calendar months before ``as_of``'s month, subscriptions ended per
  subscription live on a month's first day. The expected figure keeps ``(1 - churn)^k`` of month
  k's revenue (churn = all ended / all subscriber-months); low uses the worst month's churn
  and the lowest usage month, high the best month's churn and the highest usage month.

Amounts are Decimal, rounded to the currency's minor unit at the end; currencies never mix.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, Max, OuterRef, Subquery, Sum
from django.utils import timezone

from billing.enums import Aggregation, SubscriptionStatus
from billing.models import Subscription, SubscriptionItem, UsageEvent
from billing.models.subscriptions import BILLABLE
from billing.pricing import MONTHS, add_months, price_amount
from billing.tax import line_amounts
from core.money import round_money
from reporting.projection import customer_tax_rates

ZERO = Decimal(0)
CHURN_MONTHS = 12
USAGE_MONTHS = 3


@dataclass(frozen=True, slots=True)
class ForecastMonth:
    month: date
    contracted: Decimal
    usage: Decimal
    low: Decimal
    expected: Decimal
    high: Decimal


@dataclass(frozen=True, slots=True)
class RevenueForecast:
    currency: str
    as_of: date
    # Monthly churn: all, and the best and worst month of the trailing twelve.
    churn_rate: Decimal
    churn_low: Decimal
    churn_high: Decimal
    usage_run_rate: Decimal
    months: tuple[ForecastMonth, ...]


def _month_start(day: date, shift: int = 0) -> date:
    return add_months(day.replace(day=1), shift, 1)


def _monthly_amount(sub: Subscription, items: Sequence[SubscriptionItem], rate: Decimal) -> Decimal:
    """The subscription's licensed revenue (net of tax) per month."""
    total = ZERO
    for item in items:
        price = item.price
        if price.is_metered:
            continue
        amount = price_amount(
            type=price.type,
            quantity=item.quantity,
            unit_amount=price.unit_amount,
            package_size=price.package_size,
            tiers=price.tiers,
        )
        total += line_amounts(
            quantity=Decimal(1),
            unit_price=amount,
            tax_rate=rate,
            currency=sub.currency,
            tax_inclusive=price.tax_inclusive,
        ).amount
    return total / MONTHS[sub.interval]  # type: ignore[index]


def _live_on(sub: Subscription, day: date) -> bool:
    """Whether the subscription bills licensed revenue on ``day``, as far as is known today."""
    if sub.status not in BILLABLE or sub.started_on > day:
        return False
    if sub.ended_on is not None and sub.ended_on <= day:
        return False
    if sub.cancel_at_period_end and sub.current_period_end <= day:
        return False
    return not (sub.trial_end is not None and day < sub.trial_end)


def churn_rates(*, as_of: date, currency: str) -> tuple[Decimal, Decimal, Decimal]:
    """(overall, lowest month, highest month) monthly churn over the trailing twelve months."""
    first = _month_start(as_of, -CHURN_MONTHS)
    subs = list(
        Subscription.objects.filter(currency=currency, started_on__lt=_month_start(as_of))
        .values_list("started_on", "ended_on")
        .order_by()
    )
    ended_total = live_total = 0
    monthly: list[Decimal] = []
    for shift in range(CHURN_MONTHS):
        start, end = _month_start(first, shift), _month_start(first, shift + 1)
        live = sum(1 for s, e in subs if s <= start and (e is None or e > start))
        ended = sum(1 for s, e in subs if s <= start and e is not None and start < e <= end)
        ended_total += ended
        live_total += live
        if live:
            monthly.append(Decimal(ended) / Decimal(live))
    if not live_total:
        return ZERO, ZERO, ZERO
    return Decimal(ended_total) / Decimal(live_total), min(monthly), max(monthly)


def _boundary(day: date) -> datetime:
    tz = zoneinfo.ZoneInfo(getattr(settings, "BILLING_TIME_ZONE", settings.TIME_ZONE))
    return datetime.combine(day, time.min, tzinfo=tz)


def usage_by_month(*, as_of: date, currency: str) -> list[Decimal]:
    """Metered revenue of each of the trailing three months, priced per item and month as
    billing prices a period's usage (sum, maximum, last value or unique count)."""
    out = []
    for shift in range(-USAGE_MONTHS, 0):
        start, end = _month_start(as_of, shift), _month_start(as_of, shift + 1)
        in_month = UsageEvent.objects.filter(
            occurred_at__gte=_boundary(start), occurred_at__lt=_boundary(end)
        )
        newest = in_month.filter(item_id=OuterRef("item_id")).order_by("-occurred_at", "-pk")
        aggregates = list(
            in_month.filter(item__subscription__currency=currency)
            .values("item_id")
            .annotate(
                s=Sum("quantity"),
                m=Max("quantity"),
                u=Count("value", distinct=True),
                # The last value: the newest event's quantity (ties by the larger id).
                last=Subquery(newest.values("quantity")[:1]),
            )
            .order_by("item_id")
        )
        items = SubscriptionItem.objects.select_related("price").in_bulk(
            [a["item_id"] for a in aggregates]
        )
        total = ZERO
        for row in aggregates:
            price = items[row["item_id"]].price
            if not price.is_metered:
                continue
            by_aggregation: dict[str, Decimal] = {
                Aggregation.SUM: row["s"],
                Aggregation.MAX: row["m"],
                Aggregation.UNIQUE: Decimal(row["u"]),
            }
            quantity = by_aggregation.get(price.aggregation, row["last"])
            total += price_amount(
                type=price.type,
                quantity=quantity,
                unit_amount=price.unit_amount,
                package_size=price.package_size,
                tiers=price.tiers,
            )
        out.append(total)
    return out


def forecast_currencies() -> list[str]:
    return sorted(
        set(
            Subscription.objects.exclude(status=SubscriptionStatus.CANCELED).values_list(
                "currency", flat=True
            )
        )
    )


def _revenue_forecast_one(*, as_of: date, months: int, currency: str) -> RevenueForecast:
    subs = list(
        Subscription.objects.filter(currency=currency, status__in=BILLABLE)
        .select_related("customer")
        .prefetch_related("items__price")
        .order_by("pk")
    )
    rates = customer_tax_rates({s.customer for s in subs})
    monthly = {s.pk: _monthly_amount(s, list(s.items.all()), rates[s.customer_id]) for s in subs}
    churn, churn_low, churn_high = churn_rates(as_of=as_of, currency=currency)
    usage = usage_by_month(as_of=as_of, currency=currency)
    usage_mean = sum(usage, ZERO) / len(usage)
    rows = []
    for k in range(1, months + 1):
        first_day = _month_start(as_of, k)
        contracted = sum((monthly[s.pk] for s in subs if _live_on(s, first_day)), ZERO)
        expected = (contracted + usage_mean) * (1 - churn) ** k
        low = (contracted + min(usage)) * (1 - churn_high) ** k
        high = (contracted + max(usage)) * (1 - churn_low) ** k
        rows.append(
            ForecastMonth(
                month=first_day,
                contracted=round_money(contracted, currency),
                usage=round_money(usage_mean * (1 - churn) ** k, currency),
                low=round_money(low, currency),
                expected=round_money(expected, currency),
                high=round_money(high, currency),
            )
        )
    return RevenueForecast(
        currency=currency,
        as_of=as_of,
        churn_rate=churn,
        churn_low=churn_low,
        churn_high=churn_high,
        usage_run_rate=round_money(usage_mean, currency),
        months=tuple(rows),
    )


def revenue_forecast(
    *, as_of: date | None = None, months: int = 12, currency: str | None = None
) -> list[RevenueForecast]:
    """The forecast of every currency with live subscriptions (or of ``currency``)."""
    as_of = as_of or timezone.localdate()
    currencies = [currency] if currency else forecast_currencies()
    return [_revenue_forecast_one(as_of=as_of, months=months, currency=c) for c in currencies]
