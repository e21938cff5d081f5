"""Financial KPIs (reporting.kpis): hand-computed scenarios built through the other apps'
services, each read as of an explicit date."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal as D

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from djmoney.money import Money
from hypothesis import given
from hypothesis import strategies as st

from billing.models import Customer, ProcessorAttempt
from billing.models.processors import AttemptStatus
from billing.services.customers import customer_create
from billing.services.invoices import LineInput, invoice_create
from billing.services.payment_methods import payment_method_add
from billing.services.payments import AllocationInput, payment_record
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
from core.roles import Role
from payables.services.bills import BillLineInput, bill_approve, bill_create
from payables.services.vendors import BankDetails, vendor_activate, vendor_create
from reconciliation.services_exceptions import exception_clear, exception_raise
from reporting import kpis
from reporting.kpis import KPIS, KpiUnit

AS_OF = date(2026, 6, 30)
pytestmark = pytest.mark.django_db


def at(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


@pytest.fixture
def admin(make_user):
    return make_user(Role.FINANCE_ADMIN)


@pytest.fixture
def make_customer(admin):
    counter = iter(range(1, 100))

    def make(name: str | None = None, currency: str = "USD") -> Customer:
        n = next(counter)
        customer = customer_create(
            actor=admin, name=name or f"Customer {n}", email=f"c{n}@x.example", currency=currency
        )
        customer.tax_exempt = True
        customer.save()
        return customer

    return make


@pytest.fixture
def invoice(admin):
    def make(customer: Customer, amount: str, issued: date, due: date):
        return invoice_create(
            actor=admin,
            customer_id=customer.pk,
            issue=True,
            issue_date=issued,
            due_date=due,
            lines=[LineInput(description="x", quantity=D(1), unit_price=D(amount), tax_rate=D(0))],
        )

    return make


@pytest.fixture
def pay(admin):
    def make(invoice, amount: str, on: date):
        return payment_record(
            actor=admin,
            customer_id=invoice.customer_id,
            amount=D(amount),
            currency=invoice.currency,
            method="wire_transfer",
            received_date=on,
            allocations=[AllocationInput(invoice_id=invoice.pk, amount=D(amount))],
        )

    return make


# --- the registry --------------------------------------------------------------------------


def test_every_kpi_has_a_label_a_known_unit_and_one_sentence_of_how() -> None:
    # given the registry
    units = {KpiUnit.MONEY, KpiUnit.DAYS, KpiUnit.PERCENT, KpiUnit.COUNT}
    # then each entry explains itself for the dashboard's tooltip
    for code, kpi in KPIS.items():
        assert kpi.code == code
        assert kpi.label
        assert kpi.unit in units
        assert kpi.how.endswith(".")
        assert kpi.how.count(". ") == 0, f"{code}: one sentence"


def test_an_empty_book_gives_counts_of_zero_and_leaves_undefined_ratios_out() -> None:
    # given nothing recorded
    # when every KPI is computed
    values = {(v.kpi.code, v.currency): v.value for v in kpis.kpi_values(as_of=AS_OF)}
    # then the queues are empty and no ratio divides by zero
    assert values == {("open_reconciliation_exceptions", ""): D(0), ("approvals_waiting", ""): D(0)}


# --- DSO, CEI, average days to pay -----------------------------------------------------------


def test_dso_is_receivables_over_recent_credit_sales_times_the_days(
    make_customer, invoice, pay
) -> None:
    # given an old invoice of 1,000.00 paid 400.00, and 600.00 invoiced on June 15th
    acme = make_customer()
    old = invoice(acme, "1000.00", date(2026, 3, 1), date(2026, 3, 31))
    pay(old, "400.00", date(2026, 4, 10))
    invoice(acme, "600.00", date(2026, 6, 15), date(2026, 7, 15))
    # when DSO is computed as of June 30th
    dso_30 = kpis.kpi_dso(as_of=AS_OF, days=30)
    dso_90 = kpis.kpi_dso(as_of=AS_OF, days=90)
    # then AR 1,200.00 / sales 600.00 x 30 = 60 days; over 90 days the same sales: 180 days
    assert kpis.kpi_ar(as_of=AS_OF) == {"USD": D("1200.0000")}
    assert dso_30 == {"USD": D("60.00")}
    assert dso_90 == {"USD": D("180.00")}
    # and before any sale in the window there is no DSO at all
    assert kpis.kpi_dso(as_of=date(2026, 6, 1), days=30) == {}
    # and the wire received on April 10th is cash from that day
    assert kpis.kpi_cash(as_of=date(2026, 4, 9)) == {}
    assert kpis.kpi_cash(as_of=AS_OF) == {"USD": D("400.0000")}


def test_cei_compares_what_was_collected_with_what_could_be(make_customer, invoice, pay) -> None:
    # given 1,000.00 open on May 31st, 800.00 invoiced in June, 800.00 collected in June
    acme = make_customer()
    may = invoice(acme, "1000.00", date(2026, 5, 1), date(2026, 5, 31))
    invoice(acme, "500.00", date(2026, 6, 10), date(2026, 7, 10))  # not yet due on June 30th
    late = invoice(acme, "300.00", date(2026, 6, 5), date(2026, 6, 20))
    pay(may, "700.00", date(2026, 6, 15))
    pay(late, "100.00", date(2026, 6, 25))
    # when the 30-day CEI is computed as of June 30th
    cei = kpis.kpi_cei(as_of=AS_OF, days=30)
    # then (1000 + 800 - 1000) / (1000 + 800 - 500 current) x 100 = 800 / 1300 x 100
    assert kpis.current_receivables(as_of=AS_OF) == {"USD": D("500.0000")}
    assert cei == {"USD": D("61.54")}


def test_average_days_to_pay_counts_fully_paid_invoices_to_their_last_payment(
    make_customer, invoice, pay
) -> None:
    # given invoices paid in 15 days, in 40 days (two payments), one still open, one paid
    # before the 90-day window
    acme = make_customer()
    quick = invoice(acme, "200.00", date(2026, 5, 1), date(2026, 5, 31))
    pay(quick, "200.00", date(2026, 5, 16))
    slow = invoice(acme, "1000.00", date(2026, 5, 10), date(2026, 6, 9))
    pay(slow, "300.00", date(2026, 5, 20))
    pay(slow, "700.00", date(2026, 6, 19))
    open_ = invoice(acme, "500.00", date(2026, 6, 1), date(2026, 7, 1))
    pay(open_, "100.00", date(2026, 6, 2))
    early = invoice(acme, "50.00", date(2026, 1, 1), date(2026, 1, 31))
    pay(early, "50.00", date(2026, 3, 1))
    # when
    result = kpis.kpi_average_days_to_pay(as_of=AS_OF, days=90)
    # then (15 + 40) / 2
    assert result == {"": D("27.50")}


# --- DPO and the approvals queue -------------------------------------------------------------


def test_dpo_is_payables_over_recent_purchases_and_pending_bills_wait(make_user) -> None:
    # given approved bills of 900.00 (June 10th) and 300.00 (April 15th), and 50.00 pending
    clerk = make_user(Role.AP_CLERK)
    vendor = vendor_create(
        actor=clerk,
        name="Globex",
        email="globex@vendor.example",
        currency="USD",
        bank=BankDetails(
            account_holder="Globex", routing_number="011000015", account_number="1234567"
        ),
    )
    vendor_activate(vendor_id=vendor.pk, actor=make_user(Role.CONTROLLER))
    approver = make_user(Role.APPROVER)

    def bill(number: str, amount: str, on: date, approve: bool = True) -> None:
        created = bill_create(
            actor=clerk,
            vendor_id=vendor.pk,
            number=number,
            currency="USD",
            bill_date=on,
            due_date=date(2026, 7, 31),
            lines=[BillLineInput(description="Paper", quantity=D(1), unit_price=D(amount))],
        )
        if approve:
            bill_approve(bill_id=created.pk, actor=approver)

    bill("G-1", "900.00", date(2026, 6, 10))
    bill("G-2", "300.00", date(2026, 4, 15))
    bill("G-3", "50.00", date(2026, 6, 20), approve=False)
    # when
    dpo_30 = kpis.kpi_dpo(as_of=AS_OF, days=30)
    dpo_90 = kpis.kpi_dpo(as_of=AS_OF, days=90)
    # then AP 1,200.00 / 900.00 x 30 = 40 days; / 1,200.00 x 90 = 90 days
    assert kpis.kpi_ap(as_of=AS_OF) == {"USD": D("1200.0000")}
    assert dpo_30 == {"USD": D("40.00")}
    assert dpo_90 == {"USD": D("90.00")}
    # and the pending bill waits for an approver today
    assert kpis.kpi_approvals_waiting(as_of=timezone.localdate()) == {"": D(1)}


# --- Reconciliation queue ------------------------------------------------------------------


def test_open_reconciliation_exceptions_as_of_a_day() -> None:
    # given three exceptions raised on June 10th, one of them cleared on June 20th
    with time_machine.travel(at(date(2026, 6, 10)), tick=False):
        for n in range(3):
            exception_raise(kind="unmatched_line", key=f"unmatched_line:{n}", message="?")
    with time_machine.travel(at(date(2026, 6, 20)), tick=False):
        exception_clear(key="unmatched_line:0", note="matched by hand")
    # when / then: none before, three while open, two after the clearing
    count = kpis.kpi_open_reconciliation_exceptions
    assert count(as_of=date(2026, 6, 9)) == {"": D(0)}
    assert count(as_of=date(2026, 6, 19)) == {"": D(3)}
    assert count(as_of=AS_OF) == {"": D(2)}


# --- MRR -------------------------------------------------------------------------------------


@pytest.fixture
def prices(db):
    product = product_create(actor=None, name="Pro")

    def price(amount: str, interval: str = "month"):
        return price_create(
            actor=None,
            product_id=product.pk,
            currency="USD",
            type="per_unit",
            interval=interval,
            unit_amount=D(amount),
        )

    return {
        "seat": price("30.00"),
        "big": price("60.00"),
        "yearly": price("1200.00", "year"),
        "quarterly": price("90.00", "quarter"),
    }


def _subscribe(customer, price, quantity: str, start: date, **kwargs):
    with time_machine.travel(at(start), tick=False):
        return subscription_create(
            actor=None,
            customer_id=customer.pk,
            items=[ItemInput(price.pk, D(quantity))],
            start_date=start,
            **kwargs,
        )


def test_mrr_movement_of_a_month_new_upgrade_downgrade_cancel_reactivation(
    make_customer, prices
) -> None:
    # given at the end of May: an upgrader (1 seat, 30), a downgrader (3 seats, 90) and a
    # yearly customer (1,200 / 12 = 100); a customer who left in March
    upgrader, downgrader, leaver, returning, newcomer, trial = (
        make_customer(n) for n in ("Up", "Down", "Leaver", "Back", "New", "Trial")
    )
    up = _subscribe(upgrader, prices["seat"], "1", date(2026, 5, 20))
    down = _subscribe(downgrader, prices["seat"], "3", date(2026, 5, 20))
    yearly = _subscribe(leaver, prices["yearly"], "1", date(2026, 5, 20))
    gone = _subscribe(returning, prices["seat"], "1", date(2026, 3, 1))
    with time_machine.travel(at(date(2026, 3, 20)), tick=False):
        subscription_cancel(
            actor=None, subscription_id=gone.pk, at_period_end=False, on_date=date(2026, 3, 20)
        )
    # when in June: a new customer (2 seats), the returning one (90 a quarter), an upgrade to
    # the 60 plan, a downgrade to 1 seat, the yearly customer cancels, a trial starts
    _subscribe(newcomer, prices["seat"], "2", date(2026, 6, 10))
    _subscribe(returning, prices["quarterly"], "1", date(2026, 6, 5))
    with time_machine.travel(at(date(2026, 6, 15)), tick=False):
        subscription_change(
            actor=None,
            subscription_id=up.pk,
            items=[ItemInput(prices["big"].pk, D(1))],
            on_date=date(2026, 6, 15),
        )
        subscription_change(
            actor=None,
            subscription_id=down.pk,
            items=[ItemInput(prices["seat"].pk, D(1))],
            on_date=date(2026, 6, 15),
        )
        subscription_cancel(
            actor=None, subscription_id=yearly.pk, at_period_end=False, on_date=date(2026, 6, 15)
        )
    _subscribe(trial, prices["seat"], "5", date(2026, 6, 20), trial_days=14)
    movement = kpis.mrr_movement(as_of=AS_OF)["USD"]
    # then opening 30 + 90 + 100 = 220; closing 60 + 60 + 30 + 30 = 180
    assert (movement.opening, movement.closing) == (D(220), D(180))
    assert movement.new == D(60)
    assert movement.expansion == D(30)
    assert movement.contraction == D(60)
    assert movement.churn == D(100)
    assert movement.reactivation == D(30)
    assert (
        movement.opening
        + movement.new
        + movement.expansion
        + movement.reactivation
        - movement.contraction
        - movement.churn
        == movement.closing
    )
    # and the month's figures: MRR, ARR, 1 of 3 customers lost, (100 + 60) / 220 of MRR
    assert kpis.kpi_mrr(as_of=AS_OF) == {"USD": D(180)}
    assert kpis.kpi_arr(as_of=AS_OF) == {"USD": D(2160)}
    assert kpis.kpi_mrr(as_of=date(2026, 5, 31)) == {"USD": D(220)}
    assert kpis.kpi_customer_churn_rate(as_of=AS_OF) == {"": D("33.33")}
    assert kpis.kpi_mrr_churn_rate(as_of=AS_OF) == {"USD": D("72.73")}
    # and the day before the changes, the old figures still hold
    assert kpis.mrr_by_customer(as_of=date(2026, 6, 14))[(upgrader.pk, "USD")] == D(30)
    assert kpis.mrr_by_customer(as_of=date(2026, 6, 15))[(upgrader.pk, "USD")] == D(60)


def test_mrr_prices_each_kind_of_price_and_metered_usage_of_the_last_full_month(
    make_customer,
) -> None:
    # given one monthly subscription: a flat fee of 50, 15 units in packages of 10 at 25,
    # 15 units on graduated tiers (10 at 2.00, then 1.00), and four metered prices
    product = product_create(actor=None, name="Platform")

    def price(type_: str, **kwargs):
        return price_create(
            actor=None,
            product_id=product.pk,
            currency="USD",
            interval="month",
            type=type_,
            **kwargs,
        )

    flat = price("flat", unit_amount=D("50.00"))
    package = price("package", unit_amount=D("25.00"), package_size=10)
    tiered = price(
        "tiered_graduated",
        tiers=[{"up_to": 10, "unit_amount": "2.00"}, {"up_to": None, "unit_amount": "1.00"}],
    )
    metered = {
        metric: price("per_unit", unit_amount=D(unit), metric=metric, aggregation=aggregation)
        for metric, aggregation, unit in (
            ("api_calls", "sum", "0.002"),
            ("storage_gb", "max", "0.10"),
            ("seats", "last", "8.00"),
            ("active_users", "unique", "3.00"),
        )
    }
    sub = subscription_create(
        actor=None,
        customer_id=make_customer().pk,
        start_date=date(2026, 4, 1),
        items=[
            ItemInput(flat.pk),
            ItemInput(package.pk, D(15)),
            ItemInput(tiered.pk, D(15)),
            *(ItemInput(p.pk) for p in metered.values()),
        ],
    )
    items = {i.price.metric: i.pk for i in sub.items.select_related("price") if i.price.metric}
    events = [
        ("api_calls", "1000", "", date(2026, 5, 2)),
        ("api_calls", "2500", "", date(2026, 5, 20)),
        ("storage_gb", "40", "", date(2026, 5, 3)),
        ("storage_gb", "75", "", date(2026, 5, 10)),
        ("storage_gb", "50", "", date(2026, 5, 28)),
        ("seats", "5", "", date(2026, 5, 1)),
        ("seats", "7", "", date(2026, 5, 25)),
        ("active_users", "1", "u1", date(2026, 5, 1)),
        ("active_users", "1", "u2", date(2026, 5, 2)),
        ("active_users", "1", "u1", date(2026, 5, 3)),
        ("api_calls", "999999", "", date(2026, 6, 1)),  # June is not over on June 15th
    ]
    usage_ingest(
        actor=None,
        events=[
            UsageInput(items[m], m, D(q), at(d), f"evt-{n}", v)
            for n, (m, q, v, d) in enumerate(events)
        ],
    )
    # when MRR is read in the middle of June
    mrr = kpis.kpi_mrr(as_of=date(2026, 6, 15))
    # then 50 + 2 x 25 + (10 x 2 + 5 x 1) + May's usage: 3500 x 0.002 + 75 x 0.10 + 7 x 8
    # + 2 users x 3
    assert mrr == {"USD": D("201.5000")}


def test_nrr_is_todays_mrr_of_last_years_customers_over_theirs_then(make_customer, prices) -> None:
    # given on 2025-06-30: A pays 60 (2 seats) and B 30; B ends on July 1st 2025; A adds a
    # second subscription of 30 in February; C joins in January with 10 seats (300)
    a, b, c = make_customer("A"), make_customer("B"), make_customer("C")
    _subscribe(a, prices["seat"], "2", date(2025, 6, 1))
    lost = _subscribe(b, prices["seat"], "1", date(2025, 6, 1))
    with time_machine.travel(at(date(2025, 7, 1)), tick=False):
        subscription_cancel(
            actor=None, subscription_id=lost.pk, at_period_end=False, on_date=date(2025, 7, 1)
        )
    _subscribe(a, prices["seat"], "1", date(2026, 2, 1))
    _subscribe(c, prices["seat"], "10", date(2026, 1, 1))
    # when NRR is computed as of 2026-06-30
    nrr = kpis.kpi_nrr(as_of=AS_OF)
    # then (90 + 0) / (60 + 30) x 100; C is not in it
    assert kpis.kpi_mrr(as_of=date(2025, 6, 30)) == {"USD": D(90)}
    assert kpis.kpi_mrr(as_of=AS_OF) == {"USD": D(390)}
    assert nrr == {"USD": D("100.00")}


# --- Payment success -------------------------------------------------------------------------


def test_payment_success_rate_by_processor_and_method_with_top_decline_codes(
    admin, make_customer, invoice, pay
) -> None:
    # given attempts in June: stripe card 3 ok, 1 declined, 1 unknown; paypal (ACH) 1 ok,
    # 2 failed; one still pending and one failure in May (both left out)
    acme = make_customer()
    card = payment_method_add(
        actor=admin,
        customer_id=acme.pk,
        type="credit_card",
        processor="stripe",
        processor_token="pm_card_visa",
        processor_customer_id="cus_1",
        card_brand="visa",
        card_last4="4242",
        card_exp_month=12,
        card_exp_year=2030,
    )
    bank = payment_method_add(
        actor=admin,
        customer_id=acme.pk,
        type="ach",
        bank_account_holder="Acme",
        bank_routing_number="110000000",
        bank_account_number="000123456789",
    )
    counter = iter(range(1, 100))

    def attempt(processor, method, status, day: date, code: str = "") -> None:
        n = next(counter)
        payment = None
        if status == AttemptStatus.SUCCEEDED:
            inv = invoice(acme, "10.00", date(2026, 6, 1), date(2026, 7, 1))
            payment = pay(inv, "10.00", day)
        ProcessorAttempt.objects.create(
            processor=processor,
            customer=acme,
            payment_method=method,
            currency="USD",
            amount=Money("10.00", "USD"),
            amount_minor=1000,
            status=status,
            payment=payment,
            failure_code=code,
            idempotency_key=f"bo_attempt_kpi_{n}",
            created_at=at(day),
        )

    june = date(2026, 6, 10)
    for _ in range(3):
        attempt("stripe", card, AttemptStatus.SUCCEEDED, june)
    attempt("stripe", card, AttemptStatus.FAILED, june, "card_declined")
    attempt("stripe", card, AttemptStatus.UNKNOWN, june)
    attempt("paypal", bank, AttemptStatus.SUCCEEDED, june)
    attempt("paypal", bank, AttemptStatus.FAILED, june, "insufficient_funds")
    attempt("paypal", bank, AttemptStatus.FAILED, june, "card_declined")
    attempt("stripe", card, AttemptStatus.PENDING, june)
    attempt("stripe", card, AttemptStatus.FAILED, date(2026, 5, 15), "expired_card")
    # when
    rate = kpis.kpi_payment_success_rate(as_of=AS_OF, days=30)
    detail = kpis.payment_success(as_of=AS_OF, days=30)
    # then 4 of 8 attempts succeeded
    assert rate == {"": D("50.00")}
    assert (detail.attempted, detail.succeeded) == (8, 4)
    assert [(r.key, r.attempted, r.succeeded, r.rate) for r in detail.by_processor] == [
        ("paypal", 3, 1, D("33.33")),
        ("stripe", 5, 3, D("60.00")),
    ]
    assert [(r.key, r.attempted, r.succeeded) for r in detail.by_method] == [
        ("ach", 3, 1),
        ("credit_card", 5, 3),
    ]
    assert detail.top_decline_codes == [("card_declined", 2), ("insufficient_funds", 1)]


# --- properties and query counts -------------------------------------------------------------

amounts = st.decimals(min_value=0, max_value=10_000, places=2, allow_nan=False)
books = st.dictionaries(
    st.tuples(st.integers(1, 20), st.sampled_from(["USD", "EUR"])), amounts, max_size=30
)


@given(before=books, after=books, returning=st.sets(st.integers(1, 20)))
def test_mrr_movements_always_add_up_from_opening_to_closing(before, after, returning) -> None:
    # given any two days' MRR per customer
    back = {(c, cur) for c in returning for cur in ("USD", "EUR")}
    # when the change is sorted into movements
    movements = kpis.mrr_movement_classify(before, after, back)
    # then opening + new + expansion + reactivation - contraction - churn = closing, per
    # currency, every movement is non-negative, and the ends are the days' totals
    for currency, m in movements.items():
        parts = (m.new, m.expansion, m.reactivation, m.contraction, m.churn)
        assert all(p >= 0 for p in parts)
        assert m.opening + m.new + m.expansion + m.reactivation - m.contraction - m.churn == (
            m.closing
        )
        assert m.opening == sum((v for k, v in before.items() if k[1] == currency), D(0))
        assert m.closing == sum((v for k, v in after.items() if k[1] == currency), D(0))


def test_mrr_reads_a_fixed_number_of_queries_whatever_the_number_of_subscriptions(
    make_customer, prices, django_assert_max_num_queries
) -> None:
    # given one subscription, then many more
    _subscribe(make_customer(), prices["seat"], "1", date(2026, 5, 1))
    with CaptureQueriesContext(connection) as one:
        kpis.kpi_mrr(as_of=AS_OF)
    for n in range(8):
        _subscribe(make_customer(), prices["yearly" if n % 2 else "seat"], "2", date(2026, 5, 1))
    # when MRR is read again
    with django_assert_max_num_queries(len(one.captured_queries)):
        result = kpis.kpi_mrr(as_of=AS_OF)
    # then the database did the sums: 30 + 4 x 60 + 4 x 2 x 100
    assert result == {"USD": D(1070)}
