"""Receivables on a past day: what each invoice had due then, whatever settled it (payments,
credit notes, customer credit applied, refunds) and whenever that was recorded."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from billing.services.credit_balance import customer_credit_apply
from billing.services.credit_notes import CreditLineInput, credit_note_issue
from billing.services.customers import customer_create
from billing.services.invoices import LineInput, invoice_create, invoice_void
from billing.services.payments import AllocationInput, payment_record
from billing.services.refunds import refund_issue
from receivables.selectors import (
    receivables_by_due_date,
    receivables_open,
    receivables_totals_and_count,
)

D = Decimal
pytestmark = pytest.mark.django_db


@pytest.fixture
def history(make_user):
    """Invoice A (1,000) is paid in parts, credited, refunded and settled by customer credit
    over November; invoice B (400) stays open until it is voided today."""
    admin = make_user("finance_admin")
    customer = customer_create(
        actor=admin, name="Acme", email="ap@acme.example", currency="USD", payment_terms=0
    )

    def inv(amount: str, on: date):
        return invoice_create(
            actor=admin,
            customer_id=customer.pk,
            issue=True,
            issue_date=on,
            due_date=on,
            lines=[LineInput(description="x", quantity=D(1), unit_price=D(amount), tax_rate=D(0))],
        )

    a = inv("1000.00", date(2026, 11, 1))
    b = inv("400.00", date(2026, 11, 3))

    def pay(amount: str, on: date, to_a: str | None):
        return payment_record(
            actor=admin,
            customer_id=customer.pk,
            amount=D(amount),
            currency="USD",
            method="ach",
            received_date=on,
            allocations=[AllocationInput(a.pk, D(to_a))] if to_a else [],
        )

    # Recorded out of date order: what counts is the date each one carries.
    last = pay("500.00", date(2026, 11, 12), "500.00")
    pay("300.00", date(2026, 11, 5), "300.00")
    credit_note_issue(
        actor=admin,
        invoice_id=a.pk,
        lines=[CreditLineInput(description="discount", amount=D("200.00"), tax_rate=D(0))],
        reason="goodwill",
        issue_date=date(2026, 11, 10),
    )
    refund_issue(
        actor=admin,
        customer_id=customer.pk,
        amount=D("100.00"),
        reason="returned seat",
        payment_id=last.pk,
        refund_date=date(2026, 11, 15),
    )
    pay("100.00", date(2026, 11, 18), None)  # on the credit balance
    customer_credit_apply(
        actor=admin, invoice_id=a.pk, amount=D("100.00"), applied_date=date(2026, 11, 20)
    )
    invoice_void(actor=admin, invoice_id=b.pk, reason="sent twice")
    return a, b


@pytest.mark.parametrize(
    ("day", "a_due", "b_due"),
    [
        (date(2026, 10, 31), None, None),
        (date(2026, 11, 1), "1000.00", None),
        (date(2026, 11, 4), "1000.00", "400.00"),
        (date(2026, 11, 5), "700.00", "400.00"),
        (date(2026, 11, 10), "500.00", "400.00"),
        (date(2026, 11, 12), None, "400.00"),
        (date(2026, 11, 15), "100.00", "400.00"),
        (date(2026, 11, 18), "100.00", "400.00"),
        (date(2026, 11, 20), None, "400.00"),
    ],
)
def test_each_day_shows_what_was_due_then(history, day, a_due, b_due) -> None:
    # given the history of the fixture
    a, b = history
    expected = {pk: D(due) for pk, due in ((a.pk, a_due), (b.pk, b_due)) if due}
    # when the receivables are read as of the day
    rows = {i.pk: i.due_as_of for i in receivables_open(as_of=day)}
    totals, count = receivables_totals_and_count(as_of=day)
    # then each invoice has what was due then, and the totals add those up
    assert rows == expected
    assert count == len(expected)
    assert sum((t["total"] for t in totals.values()), D(0)) == sum(expected.values(), D(0))


def test_today_after_the_void_and_the_last_settlement(history) -> None:
    # given the history: A settled, B voided today
    # when the receivables are read for today and yesterday
    from django.utils import timezone

    today = timezone.localdate()
    # then nothing is open today, and yesterday B still was
    assert list(receivables_open(as_of=today)) == []
    assert {i.pk for i in receivables_open(as_of=today - timedelta(days=1))} == {history[1].pk}


def test_by_due_date_from_a_day_keeps_only_what_is_due_from_it(make_user) -> None:
    # given open invoices due ten days ago, today and in a week
    from django.utils import timezone

    today = timezone.localdate()
    admin = make_user("finance_admin")
    customer = customer_create(actor=admin, name="Acme", email="ap@acme.example", currency="USD")
    for amount, due in (("10.00", -10), ("20.00", 0), ("30.00", 7)):
        invoice_create(
            actor=admin,
            customer_id=customer.pk,
            issue=True,
            issue_date=today - timedelta(days=20),
            due_date=today + timedelta(days=due),
            lines=[LineInput(description="x", quantity=D(1), unit_price=D(amount), tax_rate=D(0))],
        )
    # when read by due date from today, today and five days ago (the past day's rebuild)
    for as_of in (today, today - timedelta(days=5)):
        every = receivables_by_due_date(as_of=as_of)
        due_from = receivables_by_due_date(as_of=as_of, due_from=as_of)
        # then only the invoices due on or after the day are there, as in the whole read
        assert sorted(due_from) == sorted(r for r in every if r[1] >= as_of)
    assert sorted(
        (d, a) for _c, d, a, _n in receivables_by_due_date(as_of=today, due_from=today)
    ) == [(today, D("20.00")), (today + timedelta(days=7), D("30.00"))]
