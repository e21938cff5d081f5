"""Issue 11: settling a foreign-currency invoice in parts leaves no fraction of a cent in AR
(nor a bill's in AP), and ledger_check reports any that is left."""

from __future__ import annotations

import itertools
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.checks import ar_functional_check
from billing.services.credit_notes import CreditLineInput, credit_note_issue
from billing.services.customers import customer_create
from billing.services.invoices import LineInput, invoice_create, invoice_mark_uncollectible
from billing.services.payments import AllocationInput, payment_record
from billing.services.refunds import refund_issue
from core.fx import fx_rate_set
from core.ledger.enums import AccountRole
from core.ledger.models import Account
from core.ledger.selectors import account_balances
from core.ledger.services import LineSpec, journal_post

pytestmark = pytest.mark.django_db
D = Decimal


def _ar_functional(currency: str = "EUR") -> Decimal:
    ar = Account.objects.get(role=AccountRole.ACCOUNTS_RECEIVABLE)
    balances = account_balances(account=ar)
    return balances[currency].functional_balance if currency in balances else D(0)


@pytest.fixture
def eur_invoice(make_user, django_capture_on_commit_callbacks):
    """An EUR invoice of 100.00 issued ten days ago at 1.1234567 (112.3457 USD in AR)."""
    admin = make_user("finance_admin")
    today = timezone.localdate()
    issued = today - timedelta(days=10)
    fx_rate_set(base="EUR", quote="USD", rate=D("1.1234567"), rate_date=issued)
    fx_rate_set(base="EUR", quote="USD", rate=D("1.20"), rate_date=today)
    customer = customer_create(
        actor=admin, name="Berlin GmbH", email="ap@berlin.example", currency="EUR"
    )

    def make(amount: str = "100.00"):
        with django_capture_on_commit_callbacks(execute=False):
            return invoice_create(
                actor=admin,
                customer_id=customer.pk,
                issue_date=issued,
                issue=True,
                lines=[
                    LineInput(
                        description="Plan", quantity=D(1), unit_price=D(amount), tax_rate=D(0)
                    )
                ],
            )

    return admin, customer, make


def _pay(admin, customer, invoice, amount: str) -> None:
    payment_record(
        actor=admin,
        customer_id=customer.pk,
        amount=D(amount),
        currency="EUR",
        method="wire_transfer",
        allocations=[AllocationInput(invoice.pk, D(amount))],
    )


def test_paid_in_three_parts_at_another_rate_leaves_nothing_in_ar(eur_invoice) -> None:
    # given an EUR invoice carried at 112.3457 USD
    admin, customer, make = eur_invoice
    invoice = make()
    assert _ar_functional() == D("112.3457")
    # when it is paid 33.33 + 33.33 + 33.34 at 1.20
    for part in ("33.33", "33.33", "33.34"):
        _pay(admin, customer, invoice, part)
    invoice.refresh_from_db()
    # then it is paid, AR holds nothing in EUR nor in USD, and realized FX is the difference
    assert invoice.status == "paid"
    assert _ar_functional() == D(0)
    fx = Account.objects.get(role=AccountRole.FX_GAIN_LOSS)
    assert account_balances(account=fx)["EUR"].functional_balance == D("-7.6543")
    assert ar_functional_check() == []


def test_credit_note_write_off_and_refund_keep_ar_exact(eur_invoice) -> None:
    # given two EUR invoices
    admin, customer, make = eur_invoice
    first, second = make("100.00"), make("10.01")
    # when the first is paid in part, credited in part, refunded in part and paid in full
    _pay(admin, customer, first, "33.33")
    credit_note_issue(
        actor=admin,
        invoice_id=first.pk,
        reason="Goodwill",
        lines=[CreditLineInput(description="Goodwill", amount=D("11.11"), tax_rate=D(0))],
    )
    payment = first.allocations.get().payment
    refund_issue(
        actor=admin, customer_id=customer.pk, amount=D("3.33"), reason="Over", payment_id=payment.pk
    )
    first.refresh_from_db()
    _pay(admin, customer, first, str(first.amount_due.amount))
    # and the second is paid in part and the rest written off
    _pay(admin, customer, second, "3.33")
    invoice_mark_uncollectible(actor=admin, invoice_id=second.pk, reason="Gone")
    # then nothing is left in AR, in EUR or in USD
    assert _ar_functional() == D(0)
    assert ar_functional_check() == []


def test_ledger_check_reports_a_residue_left_in_ar(eur_invoice) -> None:
    # given an invoice paid in full
    admin, customer, make = eur_invoice
    invoice = make()
    _pay(admin, customer, invoice, "100.00")
    assert ar_functional_check() == []
    # when 0.0001 USD is left in AR around the settlement
    ar = Account.objects.get(role=AccountRole.ACCOUNTS_RECEIVABLE)
    fx = Account.objects.get(role=AccountRole.FX_GAIN_LOSS)
    journal_post(
        lines=[
            LineSpec.functional_only(ar, "EUR", debit=D("0.0001")),
            LineSpec.functional_only(fx, "EUR", credit=D("0.0001")),
        ],
        entry_date=timezone.localdate(),
        source="test",
    )
    # then the check names it
    (problem,) = ar_functional_check()
    assert problem.check == "billing.ar_functional"
    assert "left 0.0001 behind" in problem.message


@settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    cents=st.integers(min_value=3, max_value=10_000_000),
    # Where to cut the total, in thousandths of it.
    cuts=st.lists(st.integers(min_value=1, max_value=999), min_size=1, max_size=5),
)
def test_any_partition_of_an_invoice_settles_ar_exactly(eur_invoice, cents, cuts) -> None:
    # given an invoice of any amount, paid in any number of parts
    admin, customer, make = eur_invoice
    total = D(cents) / 100
    invoice = make(f"{total:.2f}")
    before = _ar_functional()
    points = sorted({cents * c // 1000 for c in cuts} - {0, cents})
    edges = [0, *points, cents]
    # when every part is paid
    for start, end in itertools.pairwise(edges):
        _pay(admin, customer, invoice, f"{D(end - start) / 100:.2f}")
    # then the invoice's functional value left AR exactly
    assert before - _ar_functional() == (total * D("1.1234567")).quantize(D("0.0001"))
    assert ar_functional_check() == []
