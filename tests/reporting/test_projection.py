"""The 13-week cash-flow projection (reporting.projection): hand-computed weekly figures."""

from __future__ import annotations

import datetime as dt
from datetime import date, timedelta
from decimal import Decimal as D
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.enums import BillingInterval, PaymentMethodType, PriceType
from billing.models import Invoice
from billing.services.customers import customer_create
from billing.services.invoices import LineInput, invoice_create
from billing.services.payments import AllocationInput, payment_record
from billing.services.subscriptions import (
    ItemInput,
    price_create,
    product_create,
    subscription_create,
)
from core.fx import fx_rate_set
from core.roles import Role
from payables.services.bills import BillLineInput, bill_approve, bill_create
from payables.services.vendors import BankDetails, vendor_activate, vendor_create
from receivables.services.payment_plans import (
    payment_plan_create,
    payment_plan_payment_record,
)
from reporting.projection import (
    _DRAWN,
    CashEvent,
    DaysLate,
    _edges,
    _placed,
    cash_flow_projection,
    payment_timing,
    project_events,
    receivable_events,
)

AS_OF = date(2026, 9, 1)
NOW = dt.datetime(2026, 9, 1, 12, tzinfo=dt.UTC)
pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(make_user, time_machine):
    time_machine.move_to(NOW, tick=False)
    return make_user(Role.FINANCE_ADMIN)


def _invoice(admin, customer, amount: str, due: date, issued: date = date(2026, 6, 1)):
    return invoice_create(
        actor=admin,
        customer_id=customer.pk,
        issue=True,
        issue_date=issued,
        due_date=due,
        lines=[LineInput(description="x", quantity=D(1), unit_price=D(amount), tax_rate=D(0))],
    )


def _paid_history(admin, customer, dues: list[date], days_late: int, amount: str = "100.00"):
    """Invoices of ``amount`` due on ``dues``, each paid in full ``days_late`` days after."""
    for due in dues:
        invoice = _invoice(admin, customer, amount, due)
        payment_record(
            actor=admin,
            customer_id=customer.pk,
            amount=D(amount),
            currency="USD",
            method=PaymentMethodType.WIRE_TRANSFER,
            received_date=due + timedelta(days=days_late),
            allocations=[AllocationInput(invoice_id=invoice.pk, amount=D(amount))],
        )


def _customer(admin, name: str, **extra):
    return customer_create(
        actor=admin, name=name, email=f"{name.lower()}@x.example", currency="USD", **extra
    )


@pytest.fixture
def book(admin, make_user):
    """USD: a punctual customer and one always 20 days late (three paid invoices each, 600.00
    received), each owing an invoice due 2026-09-10; a 400.00 bill due 2026-09-20 and a
    1,000.00 bill on 2/10 net 30 terms dated 2026-08-28 (discount 20.00 until 2026-09-07)."""
    punctual = _customer(admin, "Punctual")
    late = _customer(admin, "Late")
    _paid_history(
        admin, punctual, [date(2026, 6, 15), date(2026, 7, 15), date(2026, 8, 15)], days_late=0
    )
    _paid_history(
        admin, late, [date(2026, 6, 10), date(2026, 7, 10), date(2026, 8, 10)], days_late=20
    )
    _invoice(admin, punctual, "1000.00", date(2026, 9, 10))
    _invoice(admin, late, "500.00", date(2026, 9, 10))
    clerk = make_user(Role.AP_CLERK)
    bank = BankDetails(account_holder="V", routing_number="011000015", account_number="123456789")
    plain = vendor_create(actor=clerk, name="Plain", email="p@v.example", currency="USD", bank=bank)
    terms = vendor_create(
        actor=clerk,
        name="Terms",
        email="t@v.example",
        currency="USD",
        bank=bank,
        payment_terms_days=30,
        discount_percent=D("2"),
        discount_days=10,
    )
    controller = make_user(Role.CONTROLLER)
    approver = make_user(Role.APPROVER)
    for vendor, number, bill_date, due, amount in (
        (plain, "P-1", date(2026, 8, 20), date(2026, 9, 20), "400.00"),
        (terms, "T-1", date(2026, 8, 28), None, "1000.00"),
    ):
        vendor_activate(vendor_id=vendor.pk, actor=controller)
        bill = bill_create(
            actor=clerk,
            vendor_id=vendor.pk,
            number=number,
            currency="USD",
            bill_date=bill_date,
            due_date=due,
            lines=[BillLineInput(description="x", quantity=D(1), unit_price=D(amount))],
        )
        bill_approve(bill_id=bill.pk, actor=approver)
    return punctual, late


def test_known_timing_gives_the_hand_computed_weekly_figures(book) -> None:
    # given the book above, projected from 2026-09-01 (week 1 = 09-02..09-08)
    # when
    (usd,) = cash_flow_projection(as_of=AS_OF, currency="USD")
    # then the cash is the 600.00 received, and each flow lands in its week:
    # week 1: the discounted bill 1,000.00 - 20.00 on 09-07; week 2: Punctual's 1,000.00 on
    # 09-10; week 3: the 400.00 bill on 09-20; week 5: Late's 500.00 on 09-10 + 20 = 09-30
    assert usd.opening_cash == D("600.00")
    weeks = {w.week: w for w in usd.weeks}
    assert len(usd.weeks) == 13
    assert (weeks[1].start_date, weeks[1].end_date) == (date(2026, 9, 2), date(2026, 9, 8))
    assert [(w.receipts, w.disbursements) for w in usd.weeks[:6]] == [
        (D("0.00"), D("980.00")),
        (D("1000.00"), D("0.00")),
        (D("0.00"), D("400.00")),
        (D("0.00"), D("0.00")),
        (D("500.00"), D("0.00")),
        (D("0.00"), D("0.00")),
    ]
    assert [w.closing_cash for w in usd.weeks[:6]] == [
        D("-380.00"),
        D("620.00"),
        D("220.00"),
        D("220.00"),
        D("720.00"),
        D("720.00"),
    ]
    assert weeks[13].closing_cash == D("720.00")
    assert [w.net for w in usd.weeks[:3]] == [D("-980.00"), D("1000.00"), D("-400.00")]
    # and with every customer's timing certain, the bands are the point estimate
    for week in usd.weeks:
        assert week.p10_closing_cash == week.p50_closing_cash == week.p90_closing_cash
        assert week.p50_closing_cash == week.closing_cash


def test_a_customer_always_20_days_late_moves_their_receipts_20_days(book) -> None:
    # given two customers with invoices due the same day, one always paying 20 days late
    punctual, late = book
    due = date(2026, 9, 10)
    ids = {c: Invoice.objects.get(customer=c, due_date=due).pk for c in (punctual, late)}
    # when the open AR is projected
    events = {e.reference: e for e in receivable_events(as_of=AS_OF, currency="USD")}
    on_time = events[f"invoice id {ids[punctual]}"]
    delayed = events[f"invoice id {ids[late]}"]
    # then the late customer's receipt is expected 20 days after the punctual one's
    assert on_time.expected_date == due
    assert delayed.expected_date == date(2026, 9, 30)
    assert delayed.expected_date - on_time.expected_date == timedelta(days=20)


def test_a_new_customer_is_judged_by_the_portfolio(admin, book) -> None:
    # given a customer with no history, and one with only two paid invoices (fewer than 3)
    new = _customer(admin, "New")
    few = _customer(admin, "Few")
    _paid_history(admin, few, [date(2026, 7, 1), date(2026, 8, 1)], days_late=5)
    _invoice(admin, new, "300.00", date(2026, 9, 15))
    _invoice(admin, few, "200.00", date(2026, 9, 15))
    # when
    timing = payment_timing(as_of=AS_OF)
    events = [
        e
        for e in receivable_events(as_of=AS_OF, currency="USD", timing=timing)
        if e.on_date == date(2026, 9, 15)
    ]
    # then both use the portfolio's days late: 0 x3, 5 x2, 20 x3 (lower median 5), as one
    # event of two receipts (same day, same timing) that adds up to both
    assert timing.portfolio.expanded() == (0, 0, 0, 5, 5, 20, 20, 20)
    assert timing.by_customer[few.pk].expanded() == (5, 5)
    (event,) = events
    assert event.days_late == timing.portfolio
    assert event.expected_date == date(2026, 9, 20)
    assert (event.amount, event.parts) == (D("500.0000"), (D("300.0000"), D("200.0000")))
    assert event.reference == "2 invoices due 2026-09-15"


def test_an_overdue_invoice_is_expected_only_later_than_already_elapsed(admin, book) -> None:
    # given the late customer (always 20 days late) owing an invoice due 2026-08-20: 12 days
    # elapsed, so it comes 20 days late, on 09-09; and the punctual one owing since 08-20
    punctual, late = book
    _invoice(admin, late, "70.00", date(2026, 8, 20))
    _invoice(admin, punctual, "30.00", date(2026, 8, 20))
    # when
    events = {e.amount: e for e in receivable_events(as_of=AS_OF, currency="USD") if e.amount < 100}
    # then the late customer's is on 09-09, the punctual one's (beyond its history) on 09-02
    assert events[D("70.0000")].expected_date == date(2026, 9, 9)
    assert events[D("30.0000")].expected_date == date(2026, 9, 2)


def test_subscription_periods_are_billed_and_collected_with_the_customers_timing(
    admin, book
) -> None:
    # given a monthly 50.00 subscription of the late customer (tax exempt), started
    # 2026-08-15: periods end 09-15, 10-15, 11-15; due 30 days later, collected 20 days late
    _punctual, late = book
    late.tax_exempt = True
    late.save(update_fields=["tax_exempt"])
    product = product_create(actor=admin, name="Plan")
    price = price_create(
        actor=admin,
        product_id=product.pk,
        currency="USD",
        type=PriceType.FLAT,
        interval=BillingInterval.MONTH,
        unit_amount=D("50.00"),
    )
    subscription_create(
        actor=admin,
        customer_id=late.pk,
        items=[ItemInput(price_id=price.pk)],
        start_date=date(2026, 8, 15),
    )
    # when
    (usd,) = cash_flow_projection(as_of=AS_OF, currency="USD")
    # then 09-15 + 30 + 20 = 11-04 (week 10: 11-04..11-10) and 10-15 + 50 = 12-04 (week 14,
    # beyond the horizon); 11-15 is billed but collected later still
    weeks = {w.week: w for w in usd.weeks}
    assert weeks[10].receipts == D("50.00")
    assert sum((w.receipts for w in usd.weeks), D(0)) == D("1500.00") + D("50.00")


def test_installments_replace_the_invoices_of_their_plan(admin, book) -> None:
    # given a 90.00 invoice of the late customer put on a 3-installment plan from 09-05,
    # every 7 days
    _punctual, late = book
    invoice = _invoice(admin, late, "90.00", date(2026, 8, 25))
    payment_plan_create(
        actor=admin,
        customer_id=late.pk,
        invoice_ids=[invoice.pk],
        installments=3,
        first_due_date=date(2026, 9, 5),
        interval_days=7,
    )
    # when
    (usd,) = cash_flow_projection(as_of=AS_OF, currency="USD")
    # then 30.00 on 09-05 (week 1), 09-12 (week 2), 09-19 (week 3), and not the invoice
    assert [w.receipts for w in usd.weeks[:3]] == [D("30.00"), D("1030.00"), D("30.00")]
    assert usd.weeks[4].receipts == D("500.00")


def test_a_part_paid_plan_expects_only_what_is_left(admin, book) -> None:
    # given the 90.00 plan of 3 x 30.00 from 09-05, and 40.00 paid toward it on 09-01:
    # the first installment is paid and 10.00 goes toward the second
    _punctual, late = book
    invoice = _invoice(admin, late, "90.00", date(2026, 8, 25))
    plan = payment_plan_create(
        actor=admin,
        customer_id=late.pk,
        invoice_ids=[invoice.pk],
        installments=3,
        first_due_date=date(2026, 9, 5),
        interval_days=7,
    )
    payment_plan_payment_record(
        actor=admin,
        plan_id=plan.pk,
        amount=D("40.00"),
        method=PaymentMethodType.WIRE_TRANSFER,
        received_date=AS_OF,
    )
    # when
    (usd,) = cash_flow_projection(as_of=AS_OF, currency="USD")
    # then the 40.00 is cash already; 20.00 is left of the second installment, 30.00 of the third
    assert usd.opening_cash == D("640.00")
    assert [w.receipts for w in usd.weeks[:3]] == [D("0.00"), D("1020.00"), D("30.00")]


def test_a_bill_whose_discount_is_taken_lands_on_the_discount_date(book) -> None:
    # given the 2/10 net 30 bill (annualised 37 %, above the 10 % policy minimum)
    # when
    (usd,) = cash_flow_projection(as_of=AS_OF, currency="USD")
    # then 980.00 leaves in week 1 (discount date 09-07), nothing on its due date 09-27 (week 4)
    assert usd.weeks[0].disbursements == D("980.00")
    assert usd.weeks[3].disbursements == D("0.00")


def test_a_discount_below_the_policy_minimum_is_not_taken(book, settings) -> None:
    # given a policy minimum above the discount's 37 %
    settings.PAYABLES_DISCOUNT_MIN_ANNUAL_RATE = "0.50"
    # when
    (usd,) = cash_flow_projection(as_of=AS_OF, currency="USD")
    # then the full 1,000.00 leaves on the due date 09-27 (week 4)
    assert usd.weeks[0].disbursements == D("0.00")
    assert usd.weeks[3].disbursements == D("1000.00")


def test_uncertain_timing_spreads_the_bands() -> None:
    # given 100.00 due 09-10 from a customer paying on time or 20 days late, and 0.00 cash
    event = CashEvent("invoice", date(2026, 9, 10), D("100.00"), days_late=DaysLate.of((0, 20)))
    # when
    projection = project_events(
        events=[event], as_of=AS_OF, currency="USD", opening_cash=D(0), weeks=6
    )
    # then the point estimate (lower median: on time) is in week 2; weeks 2-4 range from
    # nothing (P10) to 100.00 (P90); from week 5 on it has come either way
    weeks = projection.weeks
    assert weeks[1].closing_cash == D("100.00")
    for week in weeks[1:4]:
        assert (week.p10_closing_cash, week.p90_closing_cash) == (D("0.00"), D("100.00"))
    assert weeks[4].p10_closing_cash == weeks[4].p90_closing_cash == D("100.00")
    # and the simulation is reproducible
    again = project_events(events=[event], as_of=AS_OF, currency="USD", opening_cash=D(0))
    assert again.weeks[:6] == projection.weeks


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.integers(min_value=-30, max_value=90), max_size=40),
    probe=st.integers(min_value=-40, max_value=100),
)
def test_days_late_counted_reads_as_one_entry_per_invoice(values, probe) -> None:
    # given days late of paid invoices, kept as distinct days with cumulative counts
    late = DaysLate.of(values)
    ordered = sorted(values)
    # then it reads as the sorted list of every invoice's days late would
    assert late.expanded() == tuple(ordered)
    assert len(late) == len(values)
    assert late.below(probe) == sum(1 for v in values if v < probe)
    assert late.after(probe).expanded() == tuple(v for v in ordered if v > probe)
    if values:
        assert (late.first, late.last) == (ordered[0], ordered[-1])
        assert late.median() == ordered[(len(ordered) - 1) // 2]


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.integers(min_value=-30, max_value=120), min_size=1, max_size=30),
    base=st.integers(min_value=-20, max_value=100),
    weeks=st.integers(min_value=1, max_value=13),
)
def test_week_edges_count_the_days_late_landing_before_each_week(values, base, weeks) -> None:
    # given a receipt ``base`` days after the first day with these days late
    late = DaysLate.of(values)
    edges = _edges(late, base, weeks)
    # then each edge counts the days late landing before that week's first day
    assert edges == tuple(sum(1 for v in values if base + v < 7 * k) for k in range(weeks + 1))
    # and the receipt is placed in one week, nowhere within them, or drawn, as its days say
    places = {(base + v) // 7 if 0 <= base + v < 7 * weeks else None for v in values}
    where = _placed(edges, len(late))
    if len(places) > 1:
        assert where == _DRAWN
    else:
        assert where == places.pop()


@settings(max_examples=60, deadline=None)
@given(
    due=st.integers(min_value=-10, max_value=60),
    cents=st.lists(st.integers(min_value=1, max_value=10**8), min_size=2, max_size=6),
    history=st.lists(st.integers(min_value=-15, max_value=60), min_size=1, max_size=8),
    normal=st.booleans(),
)
def test_one_event_of_several_receipts_projects_as_the_receipts_one_by_one(
    due, cents, history, normal
) -> None:
    # given receipts due the same day with one timing, as one event and as one event each
    # (references in the order of the parts: the simulation draws in that order)
    from reporting import projection

    late = DaysLate.of(history)
    on = AS_OF + timedelta(days=due)
    amounts = tuple(D(c) / 100 for c in cents)
    one = CashEvent("invoice", on, sum(amounts, D(0)), days_late=late, parts=amounts)
    each = [
        CashEvent("invoice", on, a, days_late=late, reference=f"invoice {n:02}")
        for n, a in enumerate(amounts)
    ]
    # when both are projected (by simulation, or with the normal bands), then they agree to
    # the cent: point estimate and bands
    kw = {"as_of": AS_OF, "currency": "USD", "opening_cash": D("10.00"), "simulations": 40}
    with mock.patch.object(projection, "MAX_SIMULATED_DRAWS", 0 if normal else 10**6):
        assert project_events(events=[one], **kw) == project_events(events=each, **kw)


@settings(max_examples=40, deadline=None)
@given(
    receipts=st.lists(
        st.tuples(
            st.integers(min_value=-10, max_value=100),
            st.integers(min_value=1, max_value=10**8),
            st.lists(st.integers(min_value=-15, max_value=60), min_size=1, max_size=8),
        ),
        max_size=12,
    ),
    payments=st.lists(
        st.tuples(st.integers(min_value=0, max_value=95), st.integers(1, 10**8)), max_size=6
    ),
)
def test_bands_are_ordered_in_every_week(receipts, payments) -> None:
    # given random receipts with random payment histories, and payments
    events = [
        CashEvent("invoice", AS_OF + timedelta(days=d), D(cents) / 100, days_late=DaysLate.of(h))
        for d, cents, h in receipts
    ] + [CashEvent("bill", AS_OF + timedelta(days=d), -D(cents) / 100) for d, cents in payments]
    # when
    projection = project_events(
        events=events, as_of=AS_OF, currency="USD", opening_cash=D("1000.00"), simulations=50
    )
    # then P10 <= P50 <= P90 in every week, and the point estimate adds up week by week
    cash = D("1000.00")
    for week in projection.weeks:
        assert week.p10_closing_cash <= week.p50_closing_cash <= week.p90_closing_cash
        assert week.net == week.receipts - week.disbursements
        cash += week.net
        assert week.closing_cash == cash


def test_each_currency_is_projected_on_its_own(admin, book) -> None:
    # given a EUR customer owing 800.00 EUR due 2026-09-03, beside the USD book
    fx_rate_set(base="EUR", quote="USD", rate=D("1.1"), rate_date=date(2026, 6, 1))
    euro = customer_create(actor=admin, name="Euro AG", email="e@x.example", currency="EUR")
    _invoice(admin, euro, "800.00", date(2026, 9, 3))
    # when every currency is projected
    eur, usd = cash_flow_projection(as_of=AS_OF)
    # then EUR has its own figures, none of them converted into USD nor USD's in them
    assert (eur.currency, usd.currency) == ("EUR", "USD")
    assert eur.opening_cash == D("0.00")
    assert eur.weeks[0].receipts == D("800.00")
    assert eur.weeks[-1].closing_cash == D("800.00")
    assert usd.weeks[0].receipts == D("0.00")
    assert usd.weeks[-1].closing_cash == D("720.00")


def test_the_number_of_queries_does_not_grow_with_the_book(admin, book) -> None:
    # given the book projected once
    with CaptureQueriesContext(connection) as small:
        cash_flow_projection(as_of=AS_OF, currency="USD")
    # when five more customers each owe an invoice and one has paid history
    for n in range(5):
        customer = _customer(admin, f"More{n}")
        _invoice(admin, customer, "10.00", date(2026, 9, 20))
        _paid_history(admin, customer, [date(2026, 7, 1)], days_late=3)
    with CaptureQueriesContext(connection) as large:
        cash_flow_projection(as_of=AS_OF, currency="USD")
    # then the projection reads the same number of queries
    assert len(large.captured_queries) == len(small.captured_queries)


def test_the_stored_timing_stands_for_today_while_fresh(admin, book, monkeypatch) -> None:
    # given the payment timing stored by the hourly task
    from reporting import projection
    from reporting.tasks import payment_timing_refresh_task

    payment_timing_refresh_task()
    stored = payment_timing(as_of=AS_OF)
    # then it is the timing computed from the payments, customer by customer
    computed = projection._computed_timing(AS_OF)
    assert stored.by_customer == computed.by_customer
    assert stored.portfolio == computed.portfolio
    # and the database's count of a day is what Python makes of the payments themselves
    here = projection._computed_timing_here(AS_OF)
    assert (here.by_customer, here.portfolio) == (computed.by_customer, computed.portfolio)
    assert len(stored.by_customer) == 2
    # when a customer completes another invoice after the refresh
    punctual, _late = book
    _paid_history(admin, punctual, [date(2026, 8, 25)], days_late=5)
    # then today's timing is the stored one until the next refresh
    assert payment_timing(as_of=AS_OF).by_customer[punctual.pk].expanded() == (0, 0, 0)
    # unless it is older than allowed (the clock is frozen before the database's, which
    # stamped the refresh: a negative age makes it too old): computed, with the new payment
    monkeypatch.setattr(projection, "TIMING_MAX_AGE", timedelta(days=-365))
    assert payment_timing(as_of=AS_OF).by_customer[punctual.pk].expanded() == (0, 0, 0, 5)
    # and a past day is always computed, with only what was paid by then
    monkeypatch.setattr(projection, "TIMING_MAX_AGE", timedelta(hours=2))
    assert payment_timing(as_of=date(2026, 8, 10)).by_customer[punctual.pk].expanded() == (0, 0)


def test_invoices_overdue_beyond_every_timing_are_summed_into_one_receipt(admin, book) -> None:
    # given two invoices of a punctual customer overdue more than 20 days (the latest day
    # late anyone has), and one of the late customer overdue 5 days
    punctual, late = book
    _invoice(admin, punctual, "30.00", date(2026, 7, 1))
    _invoice(admin, punctual, "45.00", date(2026, 8, 11))
    _invoice(admin, late, "70.00", date(2026, 8, 27))
    # when
    events = receivable_events(as_of=AS_OF, currency="USD")
    # then the two long overdue are one receipt on the first day, the other one on its own
    summed = [e for e in events if "overdue beyond" in e.reference]
    assert [(e.on_date, e.amount, e.days_late) for e in summed] == [
        (date(2026, 9, 2), D("75.0000"), DaysLate())
    ]
    assert summed[0].reference == "2 invoices overdue beyond every customer's timing"
    own = next(e for e in events if e.amount == D("70.0000"))
    assert own.expected_date == date(2026, 9, 16)
    # and every open invoice is in one receipt or the other
    assert sum((e.amount for e in events), D(0)) == D("1645.00")


def test_a_large_book_gets_normal_bands_close_to_the_simulation(monkeypatch) -> None:
    # given 2,500 receipts due over four weeks from customers paying 0 to 30 days late
    from reporting import projection

    events = [
        CashEvent(
            "invoice",
            AS_OF + timedelta(days=1 + n % 28),
            D(100 + (n * 37) % 900),
            days_late=DaysLate.of({(n * k) % 31 for k in range(1, 6)}),
            reference=f"invoice {n}",
        )
        for n in range(2500)
    ]
    # when projected (2,500 x 500 draws: more than a simulation is allowed), and simulated
    normal = project_events(events=events, as_of=AS_OF, currency="USD", opening_cash=D(0))
    monkeypatch.setattr(projection, "MAX_SIMULATED_DRAWS", 10**9)
    simulated = project_events(events=events, as_of=AS_OF, currency="USD", opening_cash=D(0))
    # then the bands are the normal approximation's, and agree with the simulation's within
    # a tenth of its P10-P90 width (and a cent where it has none)
    assert (normal.bands, normal.simulations) == ("normal", 0)
    assert (simulated.bands, simulated.simulations) == ("simulation", 500)
    assert normal.weeks[3].p10_closing_cash < normal.weeks[3].p90_closing_cash
    for a, b in zip(normal.weeks, simulated.weeks, strict=True):
        assert a.closing_cash == b.closing_cash
        width = b.p90_closing_cash - b.p10_closing_cash
        for p in ("p10_closing_cash", "p50_closing_cash", "p90_closing_cash"):
            assert abs(getattr(a, p) - getattr(b, p)) <= width / 10 + D("0.01"), (a.week, p)
        assert a.p10_closing_cash <= a.p50_closing_cash <= a.p90_closing_cash
