"""Refunds from the credit balance and of payments (invoices reopen), refused beyond what
is there with nothing written."""

from __future__ import annotations

from decimal import Decimal

import pytest
from djmoney.money import Money

from billing.checks import ar_subledger_check
from billing.enums import InvoiceStatus
from billing.exceptions import BillingError
from billing.models import Refund
from billing.services.payments import payment_record
from billing.services.refunds import refund_issue
from core.exceptions import PermissionDeniedError
from core.ledger.models import JournalEntry
from core.ledger.selectors import trial_balance

D = Decimal
pytestmark = pytest.mark.django_db


def test_refund_of_an_overpayment_comes_from_the_credit_balance(
    clerk, customer, make_invoice, finance_admin
) -> None:
    make_invoice("100.00")
    payment = payment_record(
        actor=clerk, customer_id=customer.pk, amount=D("130.00"), currency="USD", method="ach"
    )
    refund = refund_issue(
        actor=finance_admin,
        customer_id=customer.pk,
        payment_id=payment.pk,
        amount=D("30.00"),
        reason="overpaid",
    )
    assert (refund.from_credit_balance, refund.from_invoices) == (
        Money("30.00", "USD"),
        Money("0", "USD"),
    )
    customer.refresh_from_db()
    assert customer.credit_balance == Money(0, "USD")
    assert sorted(refund.ledger_entry.lines.values_list("account__role", "debit", "credit")) == [
        ("cash", D(0), D("30.00")),
        ("customer_credit", D("30.00"), D(0)),
    ]


def test_refund_of_a_payment_reopens_the_newest_invoice_it_paid(
    clerk, customer, make_invoice, finance_admin
) -> None:
    first, second = make_invoice("60.00"), make_invoice("40.00")
    payment = payment_record(
        actor=clerk, customer_id=customer.pk, amount=D("100.00"), currency="USD", method="ach"
    )
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == (InvoiceStatus.PAID, InvoiceStatus.PAID)
    refund = refund_issue(
        actor=finance_admin,
        customer_id=customer.pk,
        payment_id=payment.pk,
        amount=D("50.00"),
        reason="dispute settled",
    )
    first.refresh_from_db()
    second.refresh_from_db()
    # the allocation to the second invoice is the newest: 40.00 back from it, 10.00 from the first
    assert [(a.invoice_id, a.amount.amount) for a in refund.allocations.all()] == [
        (second.pk, D("40.00")),
        (first.pk, D("10.00")),
    ]
    assert (second.status, second.amount_due) == (InvoiceStatus.OPEN, Money("40.00", "USD"))
    assert (first.status, first.amount_due) == (InvoiceStatus.OPEN, Money("10.00", "USD"))
    assert ar_subledger_check() == []
    assert trial_balance().is_balanced


def test_refund_beyond_the_payment_is_refused_and_writes_nothing(
    clerk, customer, make_invoice, finance_admin
) -> None:
    make_invoice("100.00")
    payment = payment_record(
        actor=clerk, customer_id=customer.pk, amount=D("100.00"), currency="USD", method="ach"
    )
    refund_issue(
        actor=finance_admin,
        customer_id=customer.pk,
        payment_id=payment.pk,
        amount=D("70.00"),
        reason="a",
    )
    entries = JournalEntry.objects.count()
    with pytest.raises(BillingError, match=r"Only 30\.00 USD"):
        refund_issue(
            actor=finance_admin,
            customer_id=customer.pk,
            payment_id=payment.pk,
            amount=D("30.01"),
            reason="b",
        )
    assert Refund.objects.count() == 1
    assert JournalEntry.objects.count() == entries


def test_credit_balance_refund_needs_the_balance(customer, finance_admin) -> None:
    with pytest.raises(BillingError, match=r"credit balance is only 0\.00 USD"):
        refund_issue(actor=finance_admin, customer_id=customer.pk, amount=D("5.00"), reason="x")
    assert Refund.objects.count() == 0


def test_clerk_cannot_refund(clerk, customer) -> None:
    with pytest.raises(PermissionDeniedError):
        refund_issue(actor=clerk, customer_id=customer.pk, amount=D("5.00"), reason="x")


def test_refund_through_the_api(integration_client, clerk, customer, make_invoice) -> None:
    make_invoice("100.00")
    payment = payment_record(
        actor=clerk, customer_id=customer.pk, amount=D("120.00"), currency="USD", method="ach"
    )
    response = integration_client.post(
        "/api/billing/refunds",
        {"customer": customer.pk, "payment": payment.pk, "amount": "20.00", "reason": "overpaid"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["from_credit_balance"] == "20.00"
    too_much = integration_client.post(
        "/api/billing/refunds",
        {"customer": customer.pk, "payment": payment.pk, "amount": "101.00", "reason": "again"},
        format="json",
    )
    assert too_much.status_code == 400
    assert too_much.json()["code"] == "over_refund"
