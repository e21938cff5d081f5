"""Reporting demo data for the quick start: a year of marketing spend per channel and
campaign, as the marketing tool posts it (``demo-marketing-feed``, an integration), so the
acquisition screen and API show spend, CAC and LTV:CAC beside the demo customers'
channels. The channels and campaigns are those the billing demo year gives its customers
(``billing.demo.CHANNELS``; reporting only reads other apps, so they are repeated here and a
test keeps the two lists equal). Idempotent: each month's spend is recorded once per channel
and campaign; seeding again (at any scale) finds the first month's spend and adds nothing."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.db import transaction

from core.accounts import user_ensure_in_role
from core.demo import demo_scale
from core.roles import Role
from reporting.models import MarketingSpend
from reporting.services import marketing_spend_record

FEED_USERNAME = "demo-marketing-feed"
SPEND_MONTHS = 12
SPEND_CURRENCY = "USD"
# channel -> campaign -> monthly spend at full scale in the first month of the year; spend
# grows by 3 % a month. Organic and referral customers cost nothing to acquire: no rows.
SPEND = {
    "paid_search": {"brand-keywords": Decimal(1800), "competitor-keywords": Decimal(2600)},
    "social": {"linkedin-q1": Decimal(1200), "linkedin-q3": Decimal(1500)},
    "partner": {"reseller-program": Decimal(900)},
    "events": {"saas-summit": Decimal(2200)},
}
GROWTH = Decimal("1.03")


def _month_start(today: date, months_back: int) -> date:
    first = today.replace(day=1)
    year, month = divmod(first.year * 12 + first.month - 1 - months_back, 12)
    return date(year, month + 1, 1)


def reporting_demo_seed(today: date) -> str:
    scale = Decimal(str(demo_scale()))
    if not scale:
        return ""  # no demo year: no customers from these channels
    created = 0
    months = [_month_start(today, back) for back in range(SPEND_MONTHS - 1, -1, -1)]
    if MarketingSpend.objects.filter(
        channel="paid_search", campaign="brand-keywords", period=months[0]
    ).exists():
        return "Reporting demo data: already there."
    with transaction.atomic():
        feed, _ = user_ensure_in_role(username=FEED_USERNAME, role=Role.INTEGRATION)
        for n, period in enumerate(months):
            for channel, campaigns in SPEND.items():
                for campaign, base in campaigns.items():
                    amount = (base * scale * GROWTH**n).quantize(Decimal("1.00"))
                    result = marketing_spend_record(
                        actor=feed,
                        channel=channel,
                        campaign=campaign,
                        period=period,
                        amount=amount,
                        currency=SPEND_CURRENCY,
                    )
                    created += result.outcome == "created"
    return (
        f"Reporting demo data: {created} monthly marketing spend rows over "
        f"{sum(len(c) for c in SPEND.values())} campaigns in {len(SPEND)} paid channels, "
        f"recorded by {FEED_USERNAME}."
    )
