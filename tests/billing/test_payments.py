"""Payments: allocation (explicit, oldest due first), overpayment to credit, refusals that
record nothing, and concurrency (RELIABILITY.md L1)."""

from __future__ import annotations

import threading
from datetime import date
from decimal import Decimal

import pytest
from django.db import connection
from djmoney.money import Money

from billing.enums import InvoiceStatus
from billing.exceptions import CurrencyMismatch, OverAllocation
from billing.models import Customer, Invoice, Payment, PaymentAllocation
from billing.services.payments import AllocationInput, payment_record
from core.exceptions import PermissionDeniedError
from core.ledger.enums import AccountRole
from core.ledger.models import Account, JournalEntry
from core.ledger.selectors import account_balances, trial_balance

D = Decimal


def ar_balance() -> Decimal:
    balances = account_balances(account=Account.objects.get(role=AccountRole.ACCOUNTS_RECEIVABLE))
    return balances["USD"].balance if "USD" in balances else D(0)


def open_items_total() -> Decimal:
    return sum(
        (i.amount_due.amount for i in Invoice.objects.filter(status=InvoiceStatus.OPEN)), D(0)
    )


@pytest.mark.django_db
def test_explicit_partial_then_full_payment(clerk, customer, make_invoice) -> None:
    # given
    invoice = make_invoice("100.00")
    # when a partial payment
    payment_record(
        actor=clerk,
        customer_id=customer.pk,
        amount=D("40.00"),
        currency="USD",
        method="ach",
        allocations=[AllocationInput(invoice.pk, D("40.00"))],
    )
    invoice.refresh_from_db()
    # then
    assert (invoice.status, invoice.amount_paid, invoice.amount_due) == (
        InvoiceStatus.OPEN,
        Money("40.00", "USD"),
        Money("60.00", "USD"),
    )
    # when the rest
    payment = payment_record(
        actor=clerk,
        customer_id=customer.pk,
        amount=D("60.00"),
        currency="USD",
        method="wire_transfer",
        allocations=[AllocationInput(invoice.pk, D("60.00"))],
    )
    invoice.refresh_from_db()
    # then
    assert invoice.status == InvoiceStatus.PAID
    assert invoice.amount_due == Money("0.00", "USD")
    assert sorted(payment.ledger_entry.lines.values_list("account__role", "debit", "credit")) == [
        ("accounts_receivable", D(0), D("60.00")),
        ("cash", D("60.00"), D(0)),
    ]
    assert ar_balance() == open_items_total() == 0
    assert trial_balance().is_balanced


@pytest.mark.django_db
def test_unallocated_payment_settles_oldest_due_first_and_the_rest_becomes_credit(
    clerk, customer, make_invoice
) -> None:
    # given three open invoices with different due dates
    late = make_invoice("50.00", issue_date=date(2026, 1, 10))
    oldest = make_invoice("30.00", issue_date=date(2026, 1, 1))
    newest = make_invoice("70.00", issue_date=date(2026, 2, 1))
    # when 100.00 arrives without allocations
    payment = payment_record(
        actor=clerk, customer_id=customer.pk, amount=D("100.00"), currency="USD", method="ach"
    )
    # then the oldest due are settled first, the newest partly
    got = {a.invoice_id: a.amount.amount for a in payment.allocations.all()}
    assert got == {oldest.pk: D("30.00"), late.pk: D("50.00"), newest.pk: D("20.00")}
    # and 250.00 more pays the rest, 200.00 becoming credit
    payment_record(
        actor=clerk, customer_id=customer.pk, amount=D("250.00"), currency="USD", method="ach"
    )
    customer.refresh_from_db()
    assert customer.credit_balance == Money("200.00", "USD")
    assert set(Invoice.objects.values_list("status", flat=True)) == {InvoiceStatus.PAID}
    credit = Account.objects.get(role=AccountRole.CUSTOMER_CREDIT)
    assert account_balances(account=credit)["USD"].balance == D("-200.00")
    assert ar_balance() == open_items_total() == 0


@pytest.mark.django_db
def test_allocation_above_amount_due_is_409_and_records_nothing(
    clerk, customer, make_invoice
) -> None:
    invoice = make_invoice("100.00")
    entries = JournalEntry.objects.count()
    with pytest.raises(OverAllocation, match=r"more than the 100\.00 USD due"):
        payment_record(
            actor=clerk,
            customer_id=customer.pk,
            amount=D("150.00"),
            currency="USD",
            method="ach",
            allocations=[AllocationInput(invoice.pk, D("150.00"))],
        )
    assert Payment.objects.count() == 0
    assert PaymentAllocation.objects.count() == 0
    assert JournalEntry.objects.count() == entries
    invoice.refresh_from_db()
    assert invoice.amount_paid == Money("0", "USD")


@pytest.mark.django_db
def test_allocations_above_the_payment_are_refused(clerk, customer, make_invoice) -> None:
    a, b = make_invoice("100.00"), make_invoice("100.00")
    with pytest.raises(OverAllocation, match="exceed the payment"):
        payment_record(
            actor=clerk,
            customer_id=customer.pk,
            amount=D("50.00"),
            currency="USD",
            method="ach",
            allocations=[AllocationInput(a.pk, D("30.00")), AllocationInput(b.pk, D("30.00"))],
        )
    assert Payment.objects.count() == 0


@pytest.mark.django_db
def test_credit_in_another_currency_than_the_customers_is_refused(clerk, customer) -> None:
    with pytest.raises(CurrencyMismatch):
        payment_record(
            actor=clerk, customer_id=customer.pk, amount=D("10.00"), currency="EUR", method="ach"
        )
    assert Payment.objects.count() == 0


@pytest.mark.django_db
def test_processor_charge_is_recorded_once(clerk, customer, make_invoice) -> None:
    make_invoice("100.00")
    first = payment_record(
        actor=None,
        customer_id=customer.pk,
        amount=D("100.00"),
        currency="USD",
        method="credit_card",
        processor="stripe",
        processor_charge_id="ch_123",
    )
    again = payment_record(
        actor=None,
        customer_id=customer.pk,
        amount=D("100.00"),
        currency="USD",
        method="credit_card",
        processor="stripe",
        processor_charge_id="ch_123",
    )
    assert again.pk == first.pk
    assert Payment.objects.count() == 1
    # card money sits in processor clearing until the payout reaches the bank
    assert (
        first.ledger_entry.lines.filter(debit__gt=0).get().account.role
        == AccountRole.PROCESSOR_CLEARING
    )


@pytest.mark.django_db
def test_role_without_the_right_cannot_record(make_user, customer) -> None:
    with pytest.raises(PermissionDeniedError):
        payment_record(
            actor=make_user("ap_clerk"),
            customer_id=customer.pk,
            amount=D("1.00"),
            currency="USD",
            method="ach",
        )


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_L1_concurrent_payments_never_overpay(make_user) -> None:
    # given a 100.00 invoice
    from billing.services.customers import customer_create
    from billing.services.invoices import LineInput, invoice_create

    clerk = make_user("ar_clerk")
    customer = customer_create(actor=clerk, name="Acme", email="a@acme.example", currency="USD")
    invoice = invoice_create(
        actor=clerk,
        customer_id=customer.pk,
        issue=True,
        lines=[LineInput(description="Plan", quantity=D(1), unit_price=D("100.00"), tax_rate=D(0))],
    )
    barrier = threading.Barrier(50)
    outcomes: list[str] = []
    lock = threading.Lock()

    def pay() -> None:
        barrier.wait()
        try:
            payment_record(
                actor=clerk,
                customer_id=customer.pk,
                amount=D("10.00"),
                currency="USD",
                method="ach",
                allocations=[AllocationInput(invoice.pk, D("10.00"))],
            )
            result = "ok"
        except OverAllocation:
            result = "409"
        finally:
            connection.close()
        with lock:
            outcomes.append(result)

    # when 50 threads each pay 10.00 at once
    threads = [threading.Thread(target=pay) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # then exactly 10 succeed and 40 are refused; the books agree
    assert sorted(outcomes).count("ok") == 10
    assert outcomes.count("409") == 40
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    assert sum(p.amount.amount for p in Payment.objects.all()) == D("100.00")
    assert ar_balance() == 0
    assert trial_balance().is_balanced
    assert Customer.objects.get().credit_balance == Money(0, "USD")


@pytest.mark.django_db
def test_F8_ar_subledger_check_agrees_and_catches_a_drift(clerk, customer, make_invoice) -> None:
    from billing.checks import ar_subledger_check

    invoice = make_invoice("100.00")
    payment_record(
        actor=clerk, customer_id=customer.pk, amount=D("30.00"), currency="USD", method="ach"
    )
    assert ar_subledger_check() == []
    # a sub-ledger row changed behind the services' back
    Invoice.objects.filter(pk=invoice.pk).update(amount_paid=D("50.00"))
    problems = ar_subledger_check()
    assert [p.message for p in problems] == [
        "Open invoices in USD have 50.0000 due, but the AR account holds 70.0000"
    ]


@pytest.mark.django_db
def test_settling_at_another_rate_posts_realized_fx(clerk) -> None:
    # given a EUR invoice booked at 1.0850 and paid when EUR is worth 1.1000
    from billing.services.customers import customer_create
    from billing.services.invoices import LineInput, invoice_create
    from core.fx import fx_rate_set

    fx_rate_set(base="EUR", quote="USD", rate=D("1.0850"), rate_date=date(2026, 5, 1))
    fx_rate_set(base="EUR", quote="USD", rate=D("1.1000"), rate_date=date(2026, 5, 20))
    euro = customer_create(actor=clerk, name="SARL", email="f@x.example", currency="EUR")
    invoice = invoice_create(
        actor=clerk,
        customer_id=euro.pk,
        issue_date=date(2026, 5, 1),
        issue=True,
        lines=[LineInput(description="Plan", quantity=D(1), unit_price=D("200.00"), tax_rate=D(0))],
    )
    # when
    payment = payment_record(
        actor=clerk,
        customer_id=euro.pk,
        amount=D("200.00"),
        currency="EUR",
        method="wire_transfer",
        received_date=date(2026, 5, 20),
    )
    # then cash is worth 220.00, AR was carried at 217.00, the 3.00 difference is an FX gain
    lines = sorted(
        payment.ledger_entry.lines.values_list(
            "account__role", "currency", "debit", "credit", "functional_debit", "functional_credit"
        )
    )
    assert lines == [
        ("accounts_receivable", "EUR", D(0), D("200.00"), D(0), D("217.0000")),
        ("cash", "EUR", D("200.00"), D(0), D("220.0000"), D(0)),
        ("fx_gain_loss", "EUR", D(0), D(0), D(0), D("3.0000")),
    ]
    ar = Account.objects.get(role=AccountRole.ACCOUNTS_RECEIVABLE)
    balance = account_balances(account=ar)["EUR"]
    assert (balance.balance, balance.functional_balance) == (0, 0)
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    assert trial_balance().is_balanced


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        ("oldest_due", ["jan", "feb", "mar"]),
        ("newest_due", ["mar", "feb"]),
        ("smallest", ["feb", "jan", "mar"]),
        ("largest", ["mar", "jan"]),
    ],
)
@pytest.mark.django_db
def test_the_customer_chooses_which_invoices_a_payment_settles_first(
    clerk, customer, make_invoice, order, expected
) -> None:
    from billing.services.customers import customer_update

    invoices = {
        "jan": make_invoice("50.00", issue_date=date(2026, 1, 1)),
        "feb": make_invoice("20.00", issue_date=date(2026, 2, 1)),
        "mar": make_invoice("90.00", issue_date=date(2026, 3, 1)),
    }
    customer_update(actor=clerk, customer_id=customer.pk, payment_allocation_order=order)
    payment = payment_record(
        actor=clerk, customer_id=customer.pk, amount=D("100.00"), currency="USD", method="ach"
    )
    names = {inv.pk: name for name, inv in invoices.items()}
    assert [names[a.invoice_id] for a in payment.allocations.order_by("pk")] == expected


@pytest.mark.parametrize(
    "amount", ["1e3", "NaN", "Infinity", 25.0, "0.001", "1234567890123456789012345", "-5.00"]
)
@pytest.mark.django_db
def test_B2_bad_payment_amounts_are_field_errors_and_record_nothing(
    integration_client, customer, amount
) -> None:
    response = integration_client.post(
        "/api/billing/payments",
        {"customer": customer.pk, "amount": amount, "currency": "USD", "method": "ach"},
        format="json",
    )
    assert response.status_code == 400
    if amount == "0.001":
        assert response.json()["code"] == "invalid_amount"
    else:
        assert "amount" in response.json()["errors"]
    assert Payment.objects.count() == 0


@pytest.mark.parametrize(
    ("quantity", "unit_price"), [("-1", "10.00"), ("1", "10.5e2"), ("1", "NaN"), ("1", 10.5)]
)
@pytest.mark.django_db
def test_B2_bad_invoice_lines_are_field_errors(
    integration_client, customer, quantity, unit_price
) -> None:
    response = integration_client.post(
        "/api/billing/invoices",
        {
            "customer": customer.pk,
            "lines": [{"description": "x", "quantity": quantity, "unit_price": unit_price}],
        },
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["errors"]["lines"]
    assert Invoice.objects.count() == 0


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_L2_crossing_allocations_never_deadlock_or_reach_the_client_as_500(make_user) -> None:
    """Payments touching the same invoices in opposite orders: the customer row is locked
    first, so they queue instead of deadlocking (no 40P01/40001), and every answer is a
    201 or a 409 with the books exact."""
    import json as _json

    from rest_framework.test import APIClient

    from billing.services.customers import customer_create
    from billing.services.invoices import LineInput, invoice_create
    from tests.conftest import token_for

    clerk = make_user("ar_clerk")
    integration = make_user("integration", mfa=False)
    token = token_for(integration)
    customer = customer_create(actor=clerk, name="Acme", email="a@acme.example", currency="USD")
    a, b = (
        invoice_create(
            actor=clerk,
            customer_id=customer.pk,
            issue=True,
            lines=[
                LineInput(description="x", quantity=D(1), unit_price=D("100.00"), tax_rate=D(0))
            ],
        )
        for _ in range(2)
    )
    barrier = threading.Barrier(20)
    statuses: list[int] = []
    lock = threading.Lock()

    def pay(n: int) -> None:
        first, second = (a, b) if n % 2 else (b, a)
        body = {
            "customer": customer.pk,
            "amount": "20.00",
            "currency": "USD",
            "method": "ach",
            "allocations": [
                {"invoice": first.pk, "amount": "10.00"},
                {"invoice": second.pk, "amount": "10.00"},
            ],
        }
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        barrier.wait()
        try:
            r = client.post(
                "/api/billing/payments", _json.dumps(body), content_type="application/json"
            )
            with lock:
                statuses.append(r.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=pay, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # each invoice takes ten 10.00 allocations: ten payments fit, ten are refused whole
    assert sorted(statuses) == [201] * 10 + [409] * 10
    assert sum(p.amount.amount for p in Payment.objects.all()) == D("200.00")
    assert ar_balance() == open_items_total() == 0
    assert trial_balance().is_balanced
