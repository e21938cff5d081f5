"""The revenue forecast (reporting.forecast): contracted MRR, usage run-rate, churn."""

from __future__ import annotations

import datetime as dt
from datetime import date
from decimal import Decimal as D

import pytest

from billing.enums import Aggregation, BillingInterval, PriceType
from billing.services.billing_run import billing_run
from billing.services.customers import customer_create
from billing.services.subscriptions import (
    ItemInput,
    UsageInput,
    price_create,
    product_create,
    subscription_cancel,
    subscription_create,
    usage_ingest,
)
from core.roles import Role
from reporting.forecast import churn_rates, revenue_forecast, usage_by_month

pytestmark = pytest.mark.django_db
AS_OF = date(2026, 9, 1)


def _at(time_machine, day: date) -> None:
    time_machine.move_to(dt.datetime(day.year, day.month, day.day, 12, tzinfo=dt.UTC), tick=False)


@pytest.fixture
def book(make_user, time_machine):
    """USD subscriptions of one customer:
    A monthly 100.00 + 2.00 per API call (10, 20, 30 calls in June, July, August), from 05-01;
    B monthly 100.00 from 05-01, cancelled 07-15; C yearly 1,200.00 from 08-10 (100.00/month);
    D monthly 60.00 from 08-20, cancelling at its period end 09-20;
    E monthly 50.00 from 08-25 with a 45-day trial (ends 10-09)."""
    _at(time_machine, date(2026, 5, 1))
    admin = make_user(Role.FINANCE_ADMIN)
    customer = customer_create(actor=admin, name="Acme", email="a@x.example", currency="USD")
    product = product_create(actor=admin, name="Plan")

    def price(amount: str, interval: str = BillingInterval.MONTH, **metered):
        return price_create(
            actor=admin,
            product_id=product.pk,
            currency="USD",
            type=PriceType.PER_UNIT if metered else PriceType.FLAT,
            interval=interval,
            unit_amount=D(amount),
            **metered,
        )

    def subscribe(*prices, start: date, trial_days: int = 0):
        _at(time_machine, start)
        return subscription_create(
            actor=admin,
            customer_id=customer.pk,
            items=[ItemInput(price_id=p.pk) for p in prices],
            start_date=start,
            trial_days=trial_days,
        )

    calls = price("2.00", metric="api_calls", aggregation=Aggregation.SUM)
    a = subscribe(price("100.00"), calls, start=date(2026, 5, 1))
    b = subscribe(price("100.00"), start=date(2026, 5, 1))
    _at(time_machine, date(2026, 7, 15))
    billing_run(as_of=date(2026, 7, 15), actor=admin)
    subscription_cancel(
        actor=admin, subscription_id=b.pk, at_period_end=False, on_date=date(2026, 7, 15)
    )
    subscribe(price("1200.00", BillingInterval.YEAR), start=date(2026, 8, 10))
    d = subscribe(price("60.00"), start=date(2026, 8, 20))
    subscription_cancel(actor=admin, subscription_id=d.pk, at_period_end=True)
    subscribe(price("50.00"), start=date(2026, 8, 25), trial_days=45)
    _at(time_machine, AS_OF)
    item = a.items.get(price=calls)
    usage_ingest(
        actor=admin,
        events=[
            UsageInput(
                subscription_item_id=item.pk,
                metric="api_calls",
                quantity=D(quantity),
                occurred_at=dt.datetime(2026, month, 10, tzinfo=dt.UTC),
                idempotency_key=f"calls-{month}",
            )
            for month, quantity in ((6, "10"), (7, "20"), (8, "30"))
        ],
    )


def test_churn_is_ended_per_subscriber_month(book) -> None:
    # given live on the first of May, June, July: A and B; of August: A; B ended in July
    # when
    churn = churn_rates(as_of=AS_OF, currency="USD")
    # then 1 ended in 7 subscriber-months; best month 0, worst July 1 of 2
    assert churn == (D(1) / D(7), D(0), D("0.5"))


def test_usage_is_priced_per_month(book) -> None:
    assert usage_by_month(as_of=AS_OF, currency="USD") == [D("20.00"), D("40.00"), D("60.00")]


def test_forecast_gives_the_hand_computed_months(book) -> None:
    # given the book: on 10-01 A (100.00) and C (100.00) are live, D has ended on 09-20, E is
    # in its trial; on 11-01 E (50.00) too. Usage 40.00 a month (20.00 to 60.00); churn 1/7
    # (0 to 1/2)
    # when
    (usd,) = revenue_forecast(as_of=AS_OF, months=2, currency="USD")
    # then expected = (contracted + 40) x (6/7)^k; low = (contracted + 20) x (1/2)^k;
    # high = contracted + 60
    oct_, nov = usd.months
    assert (oct_.month, nov.month) == (date(2026, 10, 1), date(2026, 11, 1))
    assert (oct_.contracted, nov.contracted) == (D("200.00"), D("250.00"))
    assert oct_.expected == D("205.71")  # 240 x 6/7 = 205.714...
    assert nov.expected == D("213.06")  # 290 x 36/49 = 213.061...
    assert (oct_.low, nov.low) == (D("110.00"), D("67.50"))
    assert (oct_.high, nov.high) == (D("260.00"), D("310.00"))
    assert oct_.usage == D("34.29")  # 40 x 6/7
    assert usd.usage_run_rate == D("40.00")
    for month in usd.months:
        assert month.low <= month.expected <= month.high


def test_usage_follows_each_prices_aggregation(make_user, time_machine) -> None:
    # given a subscription with a "last value" price (1.00 per seat) and a "maximum" price
    # (0.50 per GB): seats 5 then 7 in August, storage 9 then 4 GB in July
    _at(time_machine, date(2026, 6, 1))
    admin = make_user(Role.FINANCE_ADMIN)
    customer = customer_create(actor=admin, name="Acme", email="a@x.example", currency="USD")
    product = product_create(actor=admin, name="Usage")
    seats, storage = (
        price_create(
            actor=admin,
            product_id=product.pk,
            currency="USD",
            type=PriceType.PER_UNIT,
            interval=BillingInterval.MONTH,
            unit_amount=D(amount),
            metric=metric,
            aggregation=aggregation,
        )
        for amount, metric, aggregation in (
            ("1.00", "seats", Aggregation.LAST),
            ("0.50", "gb", Aggregation.MAX),
        )
    )
    sub = subscription_create(
        actor=admin,
        customer_id=customer.pk,
        items=[ItemInput(price_id=seats.pk), ItemInput(price_id=storage.pk)],
        start_date=date(2026, 6, 1),
    )
    items = {i.price_id: i.pk for i in sub.items.all()}
    _at(time_machine, AS_OF)
    usage_ingest(
        actor=admin,
        events=[
            UsageInput(
                subscription_item_id=items[price.pk],
                metric=price.metric,
                quantity=D(quantity),
                occurred_at=when,
                idempotency_key=f"{price.metric}-{quantity}",
            )
            for price, quantity, when in (
                (seats, "5", dt.datetime(2026, 8, 1, tzinfo=dt.UTC)),
                (seats, "7", dt.datetime(2026, 8, 20, tzinfo=dt.UTC)),
                (storage, "9", dt.datetime(2026, 7, 3, tzinfo=dt.UTC)),
                (storage, "4", dt.datetime(2026, 7, 30, tzinfo=dt.UTC)),
            )
        ],
    )
    # when
    months = usage_by_month(as_of=AS_OF, currency="USD")
    # then June nothing, July 9 GB x 0.50, August the last seat count 7 x 1.00
    assert months == [D(0), D("4.50"), D("7.00")]
