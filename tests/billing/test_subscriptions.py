"""Subscriptions and the billing run: one invoice per period, usage in arrears, proration,
trials, cancellation, catch-up, crashes and concurrency (RELIABILITY.md L7, F7)."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import connection

from billing.enums import InvoiceStatus, SubscriptionStatus
from billing.models import Invoice, UsageEvent
from billing.services import billing_run as run_module
from billing.services.billing_run import billing_run, subscription_bill_period
from billing.services.subscriptions import (
    ItemInput,
    UsageInput,
    price_create,
    product_create,
    subscription_cancel,
    subscription_change,
    subscription_create,
    usage_ingest,
)
from core.ledger.selectors import trial_balance

D = Decimal


@pytest.fixture
def plan(db):
    product = product_create(actor=None, name="Pro plan")
    return price_create(
        actor=None,
        product_id=product.pk,
        currency="USD",
        type="per_unit",
        interval="month",
        unit_amount=D("30.00"),
        nickname="Pro",
    )


@pytest.fixture
def big_plan(db):
    product = product_create(actor=None, name="Business plan")
    return price_create(
        actor=None,
        product_id=product.pk,
        currency="USD",
        type="per_unit",
        interval="month",
        unit_amount=D("60.00"),
        nickname="Business",
    )


def metered(metric: str, aggregation: str, **kwargs):
    product = product_create(actor=None, name=f"{metric} usage")
    defaults = {"type": "per_unit", "unit_amount": D("0.50")}
    defaults.update(kwargs)
    return price_create(
        actor=None,
        product_id=product.pk,
        currency="USD",
        interval="month",
        metric=metric,
        aggregation=aggregation,
        **defaults,
    )


def at(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


@pytest.fixture
def tax_free(customer):
    customer.tax_exempt = True
    customer.save()
    return customer


@pytest.mark.django_db
def test_period_end_bills_one_invoice_and_moves_on(tax_free, plan) -> None:
    # given a subscription for 2 seats started on April 1st
    sub = subscription_create(
        actor=None,
        customer_id=tax_free.pk,
        items=[ItemInput(plan.pk, D(2))],
        start_date=date(2026, 4, 1),
    )
    # when the run goes on April 30th (period not over) and May 1st
    assert billing_run(as_of=date(2026, 4, 30)).invoices == []
    result = billing_run(as_of=date(2026, 5, 1))
    # then one invoice for April, issued and posted
    invoice = Invoice.objects.get(pk__in=result.invoices)
    assert (invoice.period_start, invoice.period_end) == (date(2026, 4, 1), date(2026, 5, 1))
    assert invoice.status == InvoiceStatus.OPEN
    assert invoice.total.amount == D("60.00")
    assert [(line.description, line.quantity) for line in invoice.lines.all()] == [
        ("Pro (2026-04-01 to 2026-05-01)", D(2))
    ]
    sub.refresh_from_db()
    assert (sub.current_period_start, sub.current_period_end) == (
        date(2026, 5, 1),
        date(2026, 6, 1),
    )


@pytest.mark.django_db
def test_run_twice_and_missed_periods_are_caught_up_once(tax_free, plan) -> None:
    subscription_create(
        actor=None,
        customer_id=tax_free.pk,
        items=[ItemInput(plan.pk)],
        start_date=date(2026, 1, 31),
    )
    # when the run was missed for months, then runs twice
    first = billing_run(as_of=date(2026, 5, 15))
    second = billing_run(as_of=date(2026, 5, 15))
    # then Jan 31-Feb 28, Feb 28-Mar 31, Mar 31-Apr 30 are billed once each, in order
    periods = list(
        Invoice.objects.order_by("period_start").values_list("period_start", "period_end")
    )
    assert periods == [
        (date(2026, 1, 31), date(2026, 2, 28)),
        (date(2026, 2, 28), date(2026, 3, 31)),
        (date(2026, 3, 31), date(2026, 4, 30)),
    ]
    assert len(first.invoices) == 3
    assert second.invoices == []


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_crash_mid_run_loses_nothing_and_bills_nothing_twice(
    monkeypatch, make_user, plan
) -> None:
    from billing.services.customers import customer_create

    clerk = make_user("ar_clerk")
    customers = [
        customer_create(
            actor=clerk, name=f"C{i}", email=f"c{i}@x.example", currency="USD", tax_exempt=True
        )
        for i in range(4)
    ]
    for c in customers:
        subscription_create(
            actor=None, customer_id=c.pk, items=[ItemInput(plan.pk)], start_date=date(2026, 4, 1)
        )
    # given the process dies while issuing the third invoice
    real_issue = run_module.invoice_issue
    calls = {"n": 0}

    def dying_issue(**kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise SystemExit("worker killed")
        return real_issue(**kwargs)

    monkeypatch.setattr(run_module, "invoice_issue", dying_issue)
    with pytest.raises(SystemExit):
        billing_run(as_of=date(2026, 5, 1))
    assert Invoice.objects.count() == 2
    # when the run is started again
    monkeypatch.setattr(run_module, "invoice_issue", real_issue)
    billing_run(as_of=date(2026, 5, 1))
    # then every subscription has exactly one April invoice, with gapless numbers
    assert Invoice.objects.count() == 4
    assert sorted(Invoice.objects.values_list("number", flat=True)) == [
        f"INV-2026-00000{n}" for n in range(1, 5)
    ]
    assert set(Invoice.objects.values_list("period_start", flat=True)) == {date(2026, 4, 1)}
    assert trial_balance().is_balanced


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_L7_one_period_enqueued_twice_at_once_gives_one_invoice(make_user, plan) -> None:
    from billing.services.customers import customer_create

    clerk = make_user("ar_clerk")
    customer = customer_create(actor=clerk, name="C", email="c@x.example", currency="USD")
    sub = subscription_create(
        actor=None, customer_id=customer.pk, items=[ItemInput(plan.pk)], start_date=date(2026, 4, 1)
    )
    barrier = threading.Barrier(2)
    results = []

    def bill() -> None:
        barrier.wait()
        try:
            results.append(subscription_bill_period(subscription_id=sub.pk, as_of=date(2026, 5, 1)))
        finally:
            connection.close()

    threads = [threading.Thread(target=bill) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert Invoice.objects.count() == 1
    assert sorted(r is None for r in results) == [False, True]


@pytest.mark.django_db
def test_usage_aggregates_per_type_and_is_billed_in_arrears(tax_free) -> None:
    # given four metered prices on one subscription
    api_calls = metered("api_calls", "sum", unit_amount=D("0.002"))
    storage = metered("storage_gb", "max", unit_amount=D("0.10"))
    seats = metered("seats", "last", unit_amount=D("8.00"))
    users = metered("active_users", "unique", unit_amount=D("3.00"))
    sub = subscription_create(
        actor=None,
        customer_id=tax_free.pk,
        start_date=date(2026, 4, 1),
        items=[ItemInput(p.pk) for p in (api_calls, storage, seats, users)],
    )
    items = {i.price.metric: i.pk for i in sub.items.select_related("price")}
    events = [
        ("api_calls", "1000", "", date(2026, 4, 2)),
        ("api_calls", "2500", "", date(2026, 4, 20)),
        ("storage_gb", "40", "", date(2026, 4, 3)),
        ("storage_gb", "75", "", date(2026, 4, 10)),
        ("storage_gb", "50", "", date(2026, 4, 28)),
        ("seats", "5", "", date(2026, 4, 1)),
        ("seats", "7", "", date(2026, 4, 25)),
        ("active_users", "1", "u1", date(2026, 4, 1)),
        ("active_users", "1", "u2", date(2026, 4, 2)),
        ("active_users", "1", "u1", date(2026, 4, 3)),
        ("api_calls", "999", "", date(2026, 5, 1)),  # next period
    ]
    recorded, known = usage_ingest(
        actor=None,
        events=[
            UsageInput(items[m], m, D(q), at(d), f"evt-{n}", v)
            for n, (m, q, v, d) in enumerate(events)
        ],
    )
    assert (recorded, known) == (11, 0)
    # when April is billed
    billing_run(as_of=date(2026, 5, 1))
    # then each metric is aggregated its own way
    invoice = Invoice.objects.get()
    amounts = {
        line.description.split(" x ")[0].split(" (")[0]: line.amount.amount
        for line in invoice.lines.all()
    }
    assert amounts == {
        "api_calls usage": D("7.00"),  # sum 3500 x 0.002
        "storage_gb usage": D("7.50"),  # max 75 x 0.10
        "seats usage": D("56.00"),  # last 7 x 8.00
        "active_users usage": D("6.00"),  # 2 unique users x 3.00
    }
    assert UsageEvent.objects.filter(invoice__isnull=True).count() == 1


@pytest.mark.django_db
def test_resent_usage_batch_counts_once_and_a_late_event_goes_to_the_next_invoice(tax_free) -> None:
    api_calls = metered("api_calls", "sum")
    sub = subscription_create(
        actor=None,
        customer_id=tax_free.pk,
        items=[ItemInput(api_calls.pk)],
        start_date=date(2026, 4, 1),
    )
    item = sub.items.get()
    batch = [UsageInput(item.pk, "api_calls", D("10"), at(date(2026, 4, 5)), "b-1")]
    assert usage_ingest(actor=None, events=batch) == (1, 0)
    assert usage_ingest(actor=None, events=batch) == (0, 1)
    billing_run(as_of=date(2026, 5, 1))
    # an April event arrives after April was invoiced
    usage_ingest(
        actor=None,
        events=[UsageInput(item.pk, "api_calls", D("4"), at(date(2026, 4, 29)), "late-1")],
    )
    billing_run(as_of=date(2026, 6, 1))
    april, may = Invoice.objects.order_by("period_start")
    assert april.total.amount == D("5.00")
    assert may.total.amount == D("2.00")
    assert UsageEvent.objects.filter(invoice__isnull=True).count() == 0


@pytest.mark.django_db
def test_usage_for_a_non_metered_item_is_refused_whole_batch(tax_free, plan) -> None:
    from billing.exceptions import BillingError

    api_calls = metered("api_calls", "sum")
    sub = subscription_create(
        actor=None,
        customer_id=tax_free.pk,
        items=[ItemInput(plan.pk), ItemInput(api_calls.pk)],
        start_date=date(2026, 4, 1),
    )
    licensed, meter = sub.items.order_by("pk")
    with pytest.raises(BillingError, match="Event 1"):
        usage_ingest(
            actor=None,
            events=[
                UsageInput(meter.pk, "api_calls", D("1"), at(date(2026, 4, 2)), "ok-1"),
                UsageInput(licensed.pk, "api_calls", D("1"), at(date(2026, 4, 2)), "bad-1"),
            ],
        )
    assert UsageEvent.objects.count() == 0


# Monthly plan of 30.00 in April (30 days), upgraded to 60.00 on a given day.
@pytest.mark.parametrize(
    ("day", "credit", "charge"),
    [
        (1, "-30.00", "60.00"),  # whole month left
        (11, "-20.00", "40.00"),  # 20 of 30 days left
        (16, "-15.00", "30.00"),
        (30, "-1.00", "2.00"),  # last day
    ],
)
@pytest.mark.django_db
def test_proration_table_for_an_upgrade(tax_free, plan, big_plan, day, credit, charge) -> None:
    sub = subscription_create(
        actor=None, customer_id=tax_free.pk, items=[ItemInput(plan.pk)], start_date=date(2026, 4, 1)
    )
    subscription_change(
        actor=None,
        subscription_id=sub.pk,
        items=[ItemInput(big_plan.pk)],
        on_date=date(2026, 4, day),
    )
    billing_run(as_of=date(2026, 5, 1))
    invoice = Invoice.objects.get()
    lines = [(line.description.split(" ")[0], line.amount.amount) for line in invoice.lines.all()]
    # April is billed on the new plan; the pending items adjust it for the days on the old one
    assert lines == [("Business", D("60.00")), ("Unused", D(credit)), ("Remaining", D(charge))]


@pytest.mark.django_db
def test_quantity_change_prorated_immediately(tax_free, plan) -> None:
    sub = subscription_create(
        actor=None,
        customer_id=tax_free.pk,
        items=[ItemInput(plan.pk, D(1))],
        start_date=date(2026, 4, 1),
    )
    subscription_change(
        actor=None,
        subscription_id=sub.pk,
        items=[ItemInput(plan.pk, D(3))],
        on_date=date(2026, 4, 16),
        prorate_now=True,
    )
    invoice = Invoice.objects.get()
    assert invoice.subscription_id is None
    assert invoice.total.amount == D("30.00")  # -15.00 + 45.00 for 15 of 30 days
    assert invoice.status == InvoiceStatus.OPEN


@pytest.mark.django_db
def test_trial_is_free_then_billing_starts(tax_free, plan) -> None:
    sub = subscription_create(
        actor=None,
        customer_id=tax_free.pk,
        items=[ItemInput(plan.pk)],
        start_date=date(2026, 4, 1),
        trial_days=14,
    )
    assert sub.status == SubscriptionStatus.TRIALING
    billing_run(as_of=date(2026, 5, 16))
    trial, first = Invoice.objects.order_by("period_start")
    assert (trial.period_start, trial.period_end, trial.total.amount, trial.status) == (
        date(2026, 4, 1),
        date(2026, 4, 15),
        D(0),
        InvoiceStatus.PAID,
    )
    assert (first.period_start, first.period_end, first.total.amount) == (
        date(2026, 4, 15),
        date(2026, 5, 15),
        D("30.00"),
    )
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.ACTIVE


@pytest.mark.django_db
def test_cancel_now_bills_the_days_used_and_cancel_at_period_end_bills_the_last_period(
    tax_free, plan
) -> None:
    now_sub = subscription_create(
        actor=None, customer_id=tax_free.pk, items=[ItemInput(plan.pk)], start_date=date(2026, 4, 1)
    )
    later_sub = subscription_create(
        actor=None, customer_id=tax_free.pk, items=[ItemInput(plan.pk)], start_date=date(2026, 4, 1)
    )
    subscription_cancel(
        actor=None, subscription_id=now_sub.pk, at_period_end=False, on_date=date(2026, 4, 11)
    )
    subscription_cancel(actor=None, subscription_id=later_sub.pk, at_period_end=True)
    billing_run(as_of=date(2026, 7, 1))
    now_sub.refresh_from_db()
    later_sub.refresh_from_db()
    assert (now_sub.status, now_sub.ended_on) == (SubscriptionStatus.CANCELED, date(2026, 4, 11))
    assert (later_sub.status, later_sub.ended_on) == (SubscriptionStatus.CANCELED, date(2026, 5, 1))
    assert [i.total.amount for i in Invoice.objects.filter(subscription=now_sub)] == [D("10.00")]
    assert [i.total.amount for i in Invoice.objects.filter(subscription=later_sub)] == [D("30.00")]


@pytest.mark.parametrize(
    "zone", ["UTC", "America/Los_Angeles", "Asia/Kolkata", "Pacific/Kiritimati"]
)
@pytest.mark.django_db
def test_F7_one_invoice_per_period_across_dst_and_month_ends(settings, tax_free, zone) -> None:
    # given a billing time zone, a subscription anchored on the 31st, and usage around
    # midnight at each period boundary, across both DST changes of 2026
    settings.BILLING_TIME_ZONE = zone
    tz = ZoneInfo(zone)
    api_calls = metered("api_calls", "sum", unit_amount=D("1.00"))
    sub = subscription_create(
        actor=None,
        customer_id=tax_free.pk,
        items=[ItemInput(api_calls.pk)],
        start_date=date(2026, 1, 31),
    )
    item = sub.items.get()
    ends = [
        date(2026, 2, 28),
        date(2026, 3, 31),
        date(2026, 4, 30),
        date(2026, 5, 31),
        date(2026, 6, 30),
        date(2026, 7, 31),
        date(2026, 8, 31),
        date(2026, 9, 30),
        date(2026, 10, 31),
        date(2026, 11, 30),
        date(2026, 12, 31),
    ]
    events = []
    for n, end in enumerate(ends):
        before = datetime(end.year, end.month, end.day, tzinfo=tz) - timedelta(seconds=1)
        after = datetime(end.year, end.month, end.day, tzinfo=tz)
        events.append(UsageInput(item.pk, "api_calls", D(1), before, f"b{n}"))
        events.append(UsageInput(item.pk, "api_calls", D(1), after, f"a{n}"))
    usage_ingest(actor=None, events=events)
    # when billed day by day through the year
    day = date(2026, 1, 31)
    while day <= date(2026, 12, 31):
        billing_run(as_of=day)
        day += timedelta(days=1)
    # then one invoice per period, each with the events inside its local boundaries
    invoices = list(Invoice.objects.order_by("period_start"))
    assert [i.period_end for i in invoices] == ends
    assert [i.total.amount for i in invoices] == [D(1)] + [D(2)] * (len(ends) - 1)
