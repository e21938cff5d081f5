"""Acquisition economics per channel and campaign over a run of calendar months: new
customers, marketing spend, CAC, first-year revenue, LTV, LTV:CAC and payback.

Definitions (all money in the functional currency, the billing currency of the system
settings):

- A customer is *acquired* on their ``Customer.acquired_on`` ("customer since": the day the
  record was made unless set, as for customers brought over from an earlier system), under
  its ``acquisition_channel`` and ``campaign`` (matched
  exactly with the spend's channel and campaign; customers without a channel form the row
  with an empty channel).
- *Spend*: the ``MarketingSpend`` rows of the months, each converted at the FX rate in force
  at its month's end (or today, for the current month) with ``core.fx.fx_rate_get``; a
  missing rate is refused (``fx_rate_missing``) rather than reported wrong.
- *CAC* = spend / new customers.
- *Average first-year revenue*: the net amounts (subtotal, before tax) of the customers'
  issued invoices (open, paid or uncollectible; not draft or void) dated in the 12 months
  from the day they were acquired, at each invoice's own issue-date rate, divided by the new
  customers. Credit notes are not deducted; for recent customers the year is not over yet.
- *ARPA* (monthly) = average first-year revenue / 12.
- *Monthly churn*: the mean of ``reporting.kpis.kpi_customer_churn_rate`` (paying customers
  lost in the month / paying at its start, company-wide) over the period's complete months,
  at most its last 12.
- *LTV* = ARPA x gross margin / monthly churn; gross margin is the setting
  ``REPORTING_GROSS_MARGIN`` (default 0.80).
- *LTV:CAC* = LTV / CAC; *payback months* = CAC / (ARPA x gross margin).

A figure whose denominator is zero (no customers, no spend, no churn) is None, never an
error and never 0.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from billing.enums import InvoiceStatus
from billing.models import Customer, Invoice
from core.fx import fx_rate_get
from core.system_settings import system_settings
from reporting.kpis import kpi_customer_churn_rate
from reporting.models import MarketingSpend

ZERO = Decimal(0)
TWELVE = Decimal(12)
HUNDRED = Decimal(100)
CENT = Decimal("0.01")
DEFAULT_GROSS_MARGIN = Decimal("0.80")
# Churn is averaged over at most this many of the period's last complete months.
CHURN_MONTHS = 12
REVENUE_STATUSES = (InvoiceStatus.OPEN, InvoiceStatus.PAID, InvoiceStatus.UNCOLLECTIBLE)


def month_end(month: date) -> date:
    return month.replace(day=calendar.monthrange(month.year, month.month)[1])


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later (the month's last day when it is shorter)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def months_between(first: date, last: date) -> list[date]:
    """The first days of the months from ``first``'s to ``last``'s, both included."""
    out = []
    current = first.replace(day=1)
    while current <= last:
        out.append(current)
        current = add_months(current, 1)
    return out


def gross_margin() -> Decimal:
    """``settings.REPORTING_GROSS_MARGIN`` as a Decimal fraction (0.80 when unset)."""
    return Decimal(str(getattr(settings, "REPORTING_GROSS_MARGIN", DEFAULT_GROSS_MARGIN)))


def _div(numerator: Decimal | None, denominator: Decimal | None) -> Decimal | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def _round(value: Decimal | None) -> Decimal | None:
    return None if value is None else value.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class AcquisitionRow:
    channel: str
    campaign: str
    new_customers: int
    spend: Decimal
    cac: Decimal | None
    average_first_year_revenue: Decimal | None
    arpa: Decimal | None
    ltv: Decimal | None
    ltv_to_cac: Decimal | None
    payback_months: Decimal | None


@dataclass(frozen=True, slots=True)
class Acquisition:
    date_from: date
    date_to: date
    currency: str
    gross_margin: Decimal
    # Percent per month, or None when no complete month had paying customers at its start.
    monthly_churn: Decimal | None
    rows: list[AcquisitionRow] = field(default_factory=list)


def marketing_spend_list(*, month_from: date, month_to: date) -> QuerySet[MarketingSpend]:
    """The spend recorded for the months from ``month_from``'s to ``month_to``'s."""
    return MarketingSpend.objects.filter(
        period__gte=month_from.replace(day=1), period__lte=month_to.replace(day=1)
    ).select_related("recorded_by")


def monthly_churn(*, month_from: date, month_to: date, today: date) -> Decimal | None:
    """Mean monthly customer churn in percent over the complete months of the period (at
    most the last ``CHURN_MONTHS``); None when no month had paying customers at its start."""
    complete = [m for m in months_between(month_from, month_to) if month_end(m) <= today]
    rates = []
    for month in complete[-CHURN_MONTHS:]:
        value = kpi_customer_churn_rate(as_of=month_end(month)).get("")
        if value is not None:
            rates.append(value)
    if not rates:
        return None
    return _round(sum(rates, ZERO) / len(rates))


def _spend_by_key(
    month_from: date, month_to: date, functional: str, today: date
) -> dict[tuple[str, str], Decimal]:
    rates: dict[tuple[str, date], Decimal] = {}
    out: dict[tuple[str, str], Decimal] = defaultdict(lambda: ZERO)
    for row in marketing_spend_list(month_from=month_from, month_to=month_to):
        on = min(month_end(row.period), today)
        rate_key = (row.currency, on)
        if rate_key not in rates:
            rates[rate_key] = fx_rate_get(base=row.currency, quote=functional, on_date=on)
        out[row.channel, row.campaign] += row.amount * rates[rate_key]
    return out


def acquisition_economics(*, month_from: date, month_to: date) -> Acquisition:
    """Acquisition economics of the customers acquired and the spend recorded in the months
    from ``month_from``'s to ``month_to``'s (both included), per channel and campaign."""
    date_from, date_to = month_from.replace(day=1), month_end(month_to)
    functional = system_settings().functional_currency
    today = timezone.localdate()
    margin = gross_margin()

    customers = list(
        Customer.objects.filter(acquired_on__gte=date_from, acquired_on__lte=date_to).values_list(
            "pk", "acquisition_channel", "campaign", "acquired_on"
        )
    )
    acquired = {pk: on for pk, _c, _k, on in customers}
    key_of = {pk: (channel, campaign) for pk, channel, campaign, _d in customers}
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for pk in key_of:
        counts[key_of[pk]] += 1

    revenue: dict[tuple[str, str], Decimal] = defaultdict(lambda: ZERO)
    invoices = Invoice.objects.filter(
        customer__acquired_on__gte=date_from,
        customer__acquired_on__lte=date_to,
        status__in=REVENUE_STATUSES,
        issue_date__gte=date_from,
        issue_date__lt=add_months(date_to, 12),
    ).values_list("customer_id", "issue_date", "subtotal", "currency", "fx_rate")
    for customer_id, issued, subtotal, currency, rate in invoices:
        start = acquired[customer_id]
        if issued is not None and start <= issued < add_months(start, 12):
            if rate is None:
                rate = fx_rate_get(base=currency, quote=functional, on_date=issued)
            revenue[key_of[customer_id]] += Decimal(subtotal) * rate

    spend = _spend_by_key(date_from, date_to, functional, today)
    churn = monthly_churn(month_from=date_from, month_to=date_to, today=today)
    churn_fraction = None if churn is None else churn / HUNDRED

    rows = []
    for key in sorted(counts.keys() | spend.keys()):
        new = counts.get(key, 0)
        spent = spend.get(key, ZERO)
        # No spend on record: CAC unknown (not free); a recorded 0 makes it 0.
        cac = _div(spent, Decimal(new)) if key in spend else None
        first_year = _div(revenue.get(key, ZERO), Decimal(new))
        arpa = _div(first_year, TWELVE)
        margin_per_month = None if arpa is None else arpa * margin
        ltv = _div(margin_per_month, churn_fraction)
        rows.append(
            AcquisitionRow(
                channel=key[0],
                campaign=key[1],
                new_customers=new,
                spend=spent.quantize(CENT, rounding=ROUND_HALF_UP),
                cac=_round(cac),
                average_first_year_revenue=_round(first_year),
                arpa=_round(arpa),
                ltv=_round(ltv),
                ltv_to_cac=_round(_div(ltv, cac)),
                payback_months=_round(_div(cac, margin_per_month)),
            )
        )
    return Acquisition(
        date_from=date_from,
        date_to=date_to,
        currency=functional,
        gross_margin=margin,
        monthly_churn=churn,
        rows=rows,
    )
