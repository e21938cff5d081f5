"""B5: a hypothesis state machine over issue, pay, refund, credit note, void and FX keeps
every ledger invariant after every step."""

from __future__ import annotations

import contextlib
from datetime import date
from decimal import Decimal

import pytest
from django.db import transaction
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule

from billing.checks import ar_subledger_check
from billing.exceptions import BillingError, InvalidTransition
from billing.models import Customer, Invoice, Payment
from billing.services.credit_notes import CreditLineInput, credit_note_issue
from billing.services.customers import customer_create
from billing.services.invoices import LineInput, invoice_create, invoice_void
from billing.services.payments import AllocationInput, payment_record
from billing.services.refunds import refund_issue
from core.fx import fx_rate_set
from core.ledger.enums import AccountRole
from core.ledger.models import Account
from core.ledger.selectors import account_balances, trial_balance
from core.money import round_money

D = Decimal
DAY = date(2026, 6, 1)
fractions = st.sampled_from([D("0.1"), D("0.25"), D("0.5"), D("0.9"), D("1")])


class Rollback(Exception):
    pass


class BillingMachine(RuleBasedStateMachine):
    actor = None  # set by the test: a finance admin
    invoices = Bundle("invoices")
    payments = Bundle("payments")

    def __init__(self) -> None:
        super().__init__()
        self._atomic = transaction.atomic()
        self._atomic.__enter__()

    def teardown(self) -> None:
        transaction.set_rollback(True)
        self._atomic.__exit__(None, None, None)

    @initialize()
    def customers(self) -> None:
        fx_rate_set(base="EUR", quote="USD", rate=D("1.08"), rate_date=DAY)
        self.usd = customer_create(
            actor=self.actor, name="US Co", email="us@x.example", currency="USD"
        )
        self.eur = customer_create(
            actor=self.actor, name="EU Co", email="eu@x.example", currency="EUR"
        )

    @rule(target=invoices, euro=st.booleans(), cents=st.integers(1, 1_000_000), taxed=st.booleans())
    def issue(self, euro: bool, cents: int, taxed: bool) -> int:
        customer = self.eur if euro else self.usd
        invoice = invoice_create(
            actor=self.actor,
            customer_id=customer.pk,
            issue=True,
            issue_date=DAY,
            lines=[
                LineInput(
                    description="x",
                    quantity=D(1),
                    unit_price=D(cents) / 100,
                    tax_rate=D("0.0875") if taxed else D(0),
                )
            ],
        )
        return invoice.pk

    @rule(
        target=payments,
        invoice_id=invoices,
        fraction=fractions,
        extra=st.sampled_from([D(0), D("5.00")]),
    )
    def pay(self, invoice_id: int, fraction: Decimal, extra: Decimal) -> int | None:
        invoice = Invoice.objects.get(pk=invoice_id)
        due = invoice.amount_due.amount
        part = round_money(due * fraction, invoice.currency)
        if part <= 0 or invoice.status != "open":
            return None
        payment = payment_record(
            actor=self.actor,
            customer_id=invoice.customer_id,
            amount=part + extra,
            currency=invoice.currency,
            method="ach",
            received_date=DAY,
            allocations=[AllocationInput(invoice.pk, part)],
        )
        return payment.pk

    @rule(payment_id=payments, fraction=fractions)
    def refund(self, payment_id: int | None, fraction: Decimal) -> None:
        if payment_id is None:
            return
        payment = Payment.objects.get(pk=payment_id)
        left = payment.amount.amount - sum((r.amount.amount for r in payment.refunds.all()), D(0))
        amount = round_money(left * fraction, payment.currency)
        if amount <= 0:
            return
        # refused, e.g. when the overpayment was already refunded from the balance
        with contextlib.suppress(BillingError):
            refund_issue(
                actor=self.actor,
                customer_id=payment.customer_id,
                payment_id=payment.pk,
                amount=amount,
                reason="test",
                refund_date=DAY,
            )

    @rule(invoice_id=invoices, fraction=fractions)
    def credit(self, invoice_id: int, fraction: Decimal) -> None:
        invoice = Invoice.objects.get(pk=invoice_id)
        room = invoice.total.amount - sum(
            (c.total.amount for c in invoice.credit_notes.all()), D(0)
        )
        net = round_money(room * fraction / D("1.0875"), invoice.currency)
        if net <= 0 or invoice.status not in ("open", "paid"):
            return
        with contextlib.suppress(BillingError):
            credit_note_issue(
                actor=self.actor,
                invoice_id=invoice.pk,
                reason="test",
                issue_date=DAY,
                lines=[CreditLineInput(description="c", amount=net, tax_rate=D(0))],
            )

    @rule(invoice_id=invoices)
    def void(self, invoice_id: int) -> None:
        with contextlib.suppress(InvalidTransition):
            invoice_void(actor=self.actor, invoice_id=invoice_id, reason="test")

    @rule(rate=st.sampled_from([D("1.02"), D("1.08"), D("1.1234"), D("0.97")]))
    def fx_moves(self, rate: Decimal) -> None:
        fx_rate_set(base="EUR", quote="USD", rate=rate, rate_date=DAY)

    @invariant()
    def books_balance(self) -> None:
        if not hasattr(self, "usd"):
            return
        tb = trial_balance()
        assert tb.is_balanced, (tb.totals, tb.functional_totals)
        assert ar_subledger_check() == []
        credit = account_balances(account=Account.objects.get(role=AccountRole.CUSTOMER_CREDIT))
        for customer in Customer.objects.all():
            held = credit[customer.currency].balance if customer.currency in credit else D(0)
            assert -held == customer.credit_balance.amount
        for invoice in Invoice.objects.all():
            assert (
                invoice.amount_paid.amount + invoice.amount_credited.amount <= invoice.total.amount
            )
            assert invoice.amount_paid.amount >= 0


@pytest.mark.django_db
def test_B5_billing_state_machine_keeps_the_ledger_invariants(finance_admin) -> None:
    BillingMachine.actor = finance_admin
    machine = BillingMachine.TestCase
    machine.settings = settings(
        max_examples=60,
        stateful_step_count=15,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    machine().runTest()
