"""manage.py projection_backtest: the projection from a past date against what happened."""

from __future__ import annotations

import datetime as dt
from datetime import date
from decimal import Decimal as D
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from billing.enums import BillingInterval, PaymentMethodType, PriceType
from billing.services.billing_run import billing_run
from billing.services.customers import customer_create
from billing.services.invoices import LineInput, invoice_create
from billing.services.payments import AllocationInput, payment_record
from billing.services.subscriptions import (
    ItemInput,
    price_create,
    product_create,
    subscription_create,
)
from core.roles import Role
from payables.services.bills import BillLineInput, bill_approve, bill_create
from payables.services.vendors import BankDetails, vendor_activate, vendor_create
from reporting.projection import projection_backtest

pytestmark = pytest.mark.django_db
AS_OF = date(2026, 9, 1)


@pytest.fixture
def replayed(make_user, time_machine):
    """Known on 2026-09-01: a 1,000.00 invoice due 09-10 (no payment history anywhere: on its
    due date, week 2) and a 400.00 bill due 09-20 (week 3). What happened: the invoice paid
    09-12 (week 2), 300.00 more received 09-20 (week 3), the bill not paid. Today 2026-10-15."""
    time_machine.move_to(dt.datetime(2026, 9, 1, 12, tzinfo=dt.UTC), tick=False)
    admin = make_user(Role.FINANCE_ADMIN)
    customer = customer_create(actor=admin, name="Acme", email="a@x.example", currency="USD")
    invoice = invoice_create(
        actor=admin,
        customer_id=customer.pk,
        issue=True,
        issue_date=date(2026, 8, 11),
        due_date=date(2026, 9, 10),
        lines=[LineInput(description="x", quantity=D(1), unit_price=D("1000.00"), tax_rate=D(0))],
    )
    clerk = make_user(Role.AP_CLERK)
    vendor = vendor_create(
        actor=clerk,
        name="Plain",
        email="p@v.example",
        currency="USD",
        bank=BankDetails(account_holder="V", routing_number="011000015", account_number="1234567"),
    )
    vendor_activate(vendor_id=vendor.pk, actor=make_user(Role.CONTROLLER))
    bill = bill_create(
        actor=clerk,
        vendor_id=vendor.pk,
        number="P-1",
        currency="USD",
        bill_date=date(2026, 8, 20),
        due_date=date(2026, 9, 20),
        lines=[BillLineInput(description="x", quantity=D(1), unit_price=D("400.00"))],
    )
    bill_approve(bill_id=bill.pk, actor=make_user(Role.APPROVER))
    time_machine.move_to(dt.datetime(2026, 10, 15, 12, tzinfo=dt.UTC), tick=False)
    for amount, received, allocations in (
        ("1000.00", date(2026, 9, 12), [AllocationInput(invoice.pk, D("1000.00"))]),
        ("300.00", date(2026, 9, 20), None),
    ):
        payment_record(
            actor=admin,
            customer_id=customer.pk,
            amount=D(amount),
            currency="USD",
            method=PaymentMethodType.WIRE_TRANSFER,
            received_date=received,
            allocations=allocations,
        )


def test_backtest_compares_each_week_with_what_happened(replayed) -> None:
    # given the replayed book
    # when the projection from 2026-09-01 is back-tested over 8 weeks (today 2026-10-15)
    (usd,) = projection_backtest(as_of=AS_OF, weeks=8, currency="USD")
    # then projected: 0, +1,000.00, -400.00, 0...; actual: 0, +1,000.00, +300.00, 0...
    assert usd.opening_cash == D("0.00")
    rows = [(w.projected, w.actual, w.error) for w in usd.weeks]
    assert rows[:4] == [
        (D("0.00"), D("0.00"), D("0.00")),
        (D("1000.00"), D("1000.00"), D("0.00")),
        (D("-400.00"), D("300.00"), D("-700.00")),
        (D("0.00"), D("0.00"), D("0.00")),
    ]
    # weeks 7 (10-14..10-20) and 8 are not over: no actual, left out of the mean
    assert [w.actual for w in usd.weeks[5:]] == [D("0.00"), None, None]
    # mean absolute error over the six weeks over: 700.00 / 6
    assert usd.mean_absolute_error == D("116.67")


def test_the_command_prints_the_table_and_the_mean_error(replayed) -> None:
    # given
    out = StringIO()
    # when
    call_command("projection_backtest", "--from", "2026-09-01", "--weeks", "4", stdout=out)
    # then
    lines = out.getvalue().splitlines()
    assert lines[0] == "USD from 2026-09-01 (opening cash 0.00 USD)"
    assert lines[1].split() == ["week", "start", "projected", "actual", "error"]
    assert [line.split() for line in lines[2:6]] == [
        ["1", "2026-09-02", "0.00", "0.00", "0.00"],
        ["2", "2026-09-09", "1000.00", "1000.00", "0.00"],
        ["3", "2026-09-16", "-400.00", "300.00", "-700.00"],
        ["4", "2026-09-23", "0.00", "0.00", "0.00"],
    ]
    assert lines[6] == "Mean absolute error: 175.00 USD"


@pytest.mark.parametrize(
    "args", [["--from", "2026-10-15"], ["--from", "2026-09-01", "--weeks", "53"]]
)
def test_the_command_refuses_a_date_not_past_or_too_many_weeks(replayed, args) -> None:
    with pytest.raises(CommandError):
        call_command("projection_backtest", *args, stdout=StringIO())


def test_a_past_projection_bills_the_periods_not_invoiced_then(make_user, time_machine) -> None:
    # given a monthly 100.00 subscription from 2026-07-01 (tax exempt, 30-day terms), billed
    # 08-01 (due 08-31) and 09-01 (due 10-01), each invoice paid on its due date
    def at(day: date) -> None:
        time_machine.move_to(dt.datetime.combine(day, dt.time(12), dt.UTC), tick=False)

    at(date(2026, 7, 1))
    admin = make_user(Role.FINANCE_ADMIN)
    customer = customer_create(
        actor=admin, name="Acme", email="a@x.example", currency="USD", tax_exempt=True
    )
    product = product_create(actor=admin, name="Plan")
    price = price_create(
        actor=admin,
        product_id=product.pk,
        currency="USD",
        type=PriceType.FLAT,
        interval=BillingInterval.MONTH,
        unit_amount=D("100.00"),
    )
    sub = subscription_create(
        actor=admin,
        customer_id=customer.pk,
        items=[ItemInput(price_id=price.pk)],
        start_date=date(2026, 7, 1),
    )
    for day in (date(2026, 8, 1), date(2026, 9, 1)):
        at(day)
        billing_run(as_of=day, actor=admin)
    at(date(2026, 10, 15))
    for invoice in sub.invoices.order_by("period_start"):
        payment_record(
            actor=admin,
            customer_id=customer.pk,
            amount=D("100.00"),
            currency="USD",
            method=PaymentMethodType.WIRE_TRANSFER,
            received_date=invoice.due_date,
            allocations=[AllocationInput(invoice.pk, D("100.00"))],
        )
    # when the projection of 2026-08-15 is replayed (week 1 = 08-16..08-22)
    (usd,) = projection_backtest(as_of=date(2026, 8, 15), weeks=8, currency="USD")
    # then the open 08-01 invoice comes in week 3 (08-31) and the period billed on 09-01,
    # not invoiced on 08-15, in week 7 (10-01): exactly what happened
    projected = [w.projected for w in usd.weeks]
    assert projected == [D(0), D(0), D(100), D(0), D(0), D(0), D(100), D(0)]
    assert [w.actual for w in usd.weeks] == projected
    assert usd.mean_absolute_error == D("0.00")
