"""Reversing a payment recorded in error: invoices reopen, credit comes back off, the ledger
nets to where it was; refusals change nothing."""

from __future__ import annotations

from decimal import Decimal

import pytest
from djmoney.money import Money

from billing.enums import InvoiceStatus
from billing.models import Customer, Invoice, Payment, PaymentAllocation
from billing.services.payment_reversal import payment_reverse
from billing.services.payments import AllocationInput, payment_record
from core.exceptions import Conflict, PermissionDeniedError
from core.ledger.models import JournalEntry
from core.ledger.selectors import trial_balance

D = Decimal
pytestmark = pytest.mark.django_db


def snapshot() -> tuple:
    balances = sorted(
        (r.account.code, r.currency, r.debit - r.credit, r.functional_debit - r.functional_credit)
        for r in trial_balance().rows
        if r.debit != r.credit or r.functional_debit != r.functional_credit
    )
    invoices = sorted((i.pk, i.amount_due.amount, i.status) for i in Invoice.objects.all())
    credits = sorted(Customer.objects.values_list("pk", "credit_balance"))
    return balances, invoices, credits


def test_reversal_restores_invoices_credit_and_ledger(clerk, customer, make_invoice) -> None:
    # given a payment paying one invoice in full and leaving 25.00 as credit
    invoice = make_invoice("100.00")
    before = snapshot()
    payment = payment_record(
        actor=clerk, customer_id=customer.pk, amount=D("125.00"), currency="USD",
        method="ach", allocations=[AllocationInput(invoice.pk, D("100.00"))],
    )  # fmt: skip
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    # when
    reversed_payment = payment_reverse(actor=clerk, payment_id=payment.pk, reason="wrong customer")
    # then
    assert snapshot() == before
    assert (reversed_payment.failure_code, reversed_payment.amount_allocated) == (
        "reversed",
        Money(0, "USD"),
    )
    assert not PaymentAllocation.objects.filter(payment=payment).exists()
    assert JournalEntry.objects.filter(reversal_of_id=payment.ledger_entry_id).count() == 1
    # and twice is refused, changing nothing
    with pytest.raises(Conflict) as refused:
        payment_reverse(actor=clerk, payment_id=payment.pk, reason="again")
    assert refused.value.code == "already_reversed"
    assert snapshot() == before


def test_refusals_change_nothing(clerk, customer, make_invoice, make_user) -> None:
    invoice = make_invoice("50.00")
    payment = payment_record(
        actor=clerk, customer_id=customer.pk, amount=D("50.00"), currency="USD", method="ach",
        allocations=[AllocationInput(invoice.pk, D("50.00"))],
    )  # fmt: skip
    after_payment = snapshot()
    entries = JournalEntry.objects.count()
    with pytest.raises(PermissionDeniedError):
        payment_reverse(actor=make_user("auditor"), payment_id=payment.pk, reason="no")
    with pytest.raises(Conflict):
        payment_reverse(actor=clerk, payment_id=payment.pk, reason="  ")
    assert (snapshot(), JournalEntry.objects.count()) == (after_payment, entries)
    assert Payment.objects.get(pk=payment.pk).failure_code == ""
