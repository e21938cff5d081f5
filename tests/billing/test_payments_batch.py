"""Payments recorded in a batch: the same payments, allocations, invoice states, credit,
ledger lines and history rows as ``payment_record`` one by one on the same data; refused items
reported and left out, the others recorded; the AR sub-ledger agrees with the ledger."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from itertools import count
from typing import Any

import pytest
from django.db import connection
from djmoney.money import Money
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.checks import ar_subledger_check
from billing.enums import InvoiceStatus, PaymentStatus
from billing.exceptions import BillingError, CurrencyMismatch, OverAllocation
from billing.models import Customer, Invoice, Payment, PaymentAllocation
from billing.services.customers import customer_create
from billing.services.invoices import LineInput, invoice_create
from billing.services.payments import (
    AllocationInput,
    BatchPaymentInput,
    payment_record,
    payments_record_batch,
)
from core.exceptions import DomainError, PermissionDeniedError
from core.fx import fx_rate_set
from core.ledger.enums import AccountRole
from core.ledger.models import Account, JournalEntry
from core.ledger.selectors import trial_balance
from core.ledger.services import account_lock_set

D = Decimal
ISSUED = date(2026, 1, 5)
PAID = date(2026, 1, 20)
_names = count(1)


@pytest.fixture
def rates() -> None:
    """JPY and EUR at one rate on the issue date, another on the payment date: realized FX."""
    fx_rate_set(base="JPY", quote="USD", rate=D("0.0066"), rate_date=ISSUED)
    fx_rate_set(base="JPY", quote="USD", rate=D("0.0071"), rate_date=PAID)
    fx_rate_set(base="EUR", quote="USD", rate=D("1.0825"), rate_date=ISSUED)
    fx_rate_set(base="EUR", quote="USD", rate=D("1.0713"), rate_date=PAID)


@dataclass
class World:
    """One data set: customers and their open invoices, by short name."""

    customers: dict[str, Customer]
    invoices: dict[str, Invoice]


@pytest.fixture
def make_world(clerk, django_capture_on_commit_callbacks) -> Callable[..., World]:
    def make(invoices: dict[str, tuple[str, str]], currencies: dict[str, str]) -> World:
        customers = {
            key: customer_create(
                actor=clerk,
                name=f"Customer {key}",
                email=f"c{next(_names)}@x.example",
                currency=currency,
            )
            for key, currency in currencies.items()
        }
        made = {}
        for key, (customer, amount) in invoices.items():
            with django_capture_on_commit_callbacks(execute=False):
                made[key] = invoice_create(
                    actor=clerk,
                    customer_id=customers[customer].pk,
                    lines=[
                        LineInput(
                            description="Service",
                            quantity=D(1),
                            unit_price=D(amount),
                            tax_rate=D(0),
                        )
                    ],
                    issue=True,
                    issue_date=ISSUED,
                )
        return World(customers, made)

    return make


@dataclass(frozen=True)
class Item:
    """A payment in terms of a world's short names."""

    customer: str
    amount: str
    currency: str
    allocations: tuple[tuple[str, str], ...]
    method: str = "wire_transfer"
    reference: str = ""

    def batch(self, world: World) -> BatchPaymentInput:
        return BatchPaymentInput(
            customer_id=world.customers[self.customer].pk,
            amount=D(self.amount),
            currency=self.currency,
            method=self.method,
            allocations=[
                AllocationInput(world.invoices[key].pk, D(part)) for key, part in self.allocations
            ],
            received_date=PAID,
            reference=self.reference,
        )


def one_by_one(actor: Any, world: World, items: Sequence[Item]) -> list[Payment | str]:
    """``payment_record`` per item; a refusal as its error code."""
    out: list[Payment | str] = []
    for item in items:
        spec = item.batch(world)
        try:
            out.append(
                payment_record(
                    actor=actor,
                    customer_id=spec.customer_id,
                    amount=spec.amount,
                    currency=spec.currency,
                    method=spec.method,
                    received_date=spec.received_date,
                    reference=spec.reference,
                    allocations=spec.allocations,
                )
            )
        except DomainError as exc:
            out.append(exc.code)
    return out


def in_batch(actor: Any, world: World, items: Sequence[Item]) -> list[Payment | str]:
    result = payments_record_batch(actor=actor, items=[item.batch(world) for item in items])
    return [
        payment if payment is not None else result.refused[n].code
        for n, payment in enumerate(result.payments)
    ]


def picture(world: World, outcome: list[Payment | str]) -> dict[str, Any]:
    """Everything the payments wrote, in the world's short names (ids and numbers apart)."""
    names = {inv.pk: key for key, inv in world.invoices.items()}
    customer_names = {c.pk: key for key, c in world.customers.items()}
    payments = []
    for got in outcome:
        if isinstance(got, str):
            payments.append(got)
            continue
        p = Payment.objects.get(pk=got.pk)
        entry = JournalEntry.objects.get(pk=p.ledger_entry_id)
        payments.append(
            {
                "payment": (
                    customer_names[p.customer_id],
                    p.currency,
                    p.amount,
                    p.amount_allocated,
                    p.method,
                    p.status,
                    p.received_date,
                    p.reference,
                    p.created_by_id,
                ),
                "allocations": sorted(
                    (names[a.invoice_id], a.currency, a.amount)
                    for a in PaymentAllocation.objects.filter(payment=p)
                ),
                "entry": (
                    entry.entry_date,
                    entry.description.replace(f"Payment {p.pk} ", "Payment # "),
                    entry.source == entry.idempotency_key == f"billing.payment:{p.pk}",
                    entry.functional_currency,
                    entry.created_by_id,
                ),
                "lines": sorted(
                    entry.lines.values_list(
                        "account__code",
                        "currency",
                        "debit",
                        "credit",
                        "functional_debit",
                        "functional_credit",
                        "memo",
                    )
                ),
                "history": [
                    (kind, status, entry_id == p.ledger_entry_id, allocated)
                    for kind, status, entry_id, allocated in Payment.history.filter(id=p.pk)
                    .order_by("history_id")
                    .values_list("history_type", "status", "ledger_entry_id", "amount_allocated")
                ],
            }
        )
    invoices = {}
    for key, inv in world.invoices.items():
        inv.refresh_from_db()
        invoices[key] = (
            inv.amount_paid,
            inv.status,
            inv.closed_at is not None,
            list(
                Invoice.history.filter(id=inv.pk)
                .order_by("history_id")
                .values_list("history_type", "status", "amount_paid")
            ),
        )
    customers = {}
    for key, c in world.customers.items():
        c.refresh_from_db()
        customers[key] = (
            c.credit_balance,
            list(
                Customer.history.filter(id=c.pk)
                .order_by("history_id")
                .values_list("history_type", "credit_balance")
            ),
        )
    return {"payments": payments, "invoices": invoices, "customers": customers}


def same(got: dict[str, Any], expected: dict[str, Any]) -> None:
    """Payment by payment, then invoices and customers: a difference names its place."""
    assert len(got["payments"]) == len(expected["payments"])
    for n, (a, b) in enumerate(zip(got["payments"], expected["payments"], strict=True)):
        assert (n, a) == (n, b)
    assert got == expected


def books_agree() -> None:
    assert ar_subledger_check() == []
    assert trial_balance().is_balanced


INVOICES = {
    "a1": ("a", "100.00"),
    "a2": ("a", "250.50"),
    "a3": ("a", "80.00"),
    "b1": ("b", "40.00"),
    "j1": ("j", "5000"),
    "j2": ("j", "12345"),
    "e1": ("e", "99.99"),
}
CURRENCIES = {"a": "USD", "b": "USD", "j": "JPY", "e": "EUR"}
ITEMS = (
    Item("a", "100.00", "USD", (("a1", "100.00"),), reference="BR-1"),
    # an over-payment: 49.50 to the customer's credit
    Item("a", "300.00", "USD", (("a2", "250.50"),), method="ach"),
    # two payments to one invoice: partly, then the rest
    Item("a", "50.00", "USD", (("a3", "50.00"),)),
    Item("a", "30.00", "USD", (("a3", "30.00"),)),
    # refused: more than is due
    Item("b", "60.00", "USD", (("b1", "60.00"),)),
    # refused: the first item paid it already
    Item("a", "10.00", "USD", (("a1", "10.00"),)),
    # refused: JPY credit on a USD customer
    Item("b", "500", "JPY", ()),
    # refused: another customer's invoice
    Item("b", "40.00", "USD", (("a3", "0.01"),)),
    # JPY at another rate than issued: realized FX; then 345 yen to credit
    Item("j", "5000", "JPY", (("j1", "5000"),)),
    Item("j", "12690", "JPY", (("j2", "12345"),), reference="JP-2"),
    # EUR through the card processor's clearing account
    Item("e", "99.99", "EUR", (("e1", "99.99"),), method="credit_card"),
    # the other USD customer after all, in full
    Item("b", "40.00", "USD", (("b1", "40.00"),)),
)


@pytest.mark.django_db
def test_batch_writes_what_payment_record_writes_one_by_one(clerk, rates, make_world) -> None:
    # given two identical worlds
    first, second = make_world(INVOICES, CURRENCIES), make_world(INVOICES, CURRENCIES)
    # when one is paid one by one and the other in a batch
    expected = picture(first, one_by_one(clerk, first, ITEMS))
    got = picture(second, in_batch(clerk, second, ITEMS))
    # then everything written is the same, refusals included
    same(got, expected)
    assert [p if isinstance(p, str) else "ok" for p in got["payments"]] == [
        *("ok", "ok", "ok", "ok"),
        *("over_allocation", "over_allocation", "currency_mismatch", "billing_error"),
        *("ok", "ok", "ok", "ok"),
    ]
    # and the values are the ones intended
    assert got["invoices"]["a3"][:3] == (Money("80.00", "USD"), InvoiceStatus.PAID, True)
    assert got["invoices"]["j2"][:3] == (Money("12345", "JPY"), InvoiceStatus.PAID, True)
    assert got["customers"]["a"][0] == Money("49.50", "USD")
    assert got["customers"]["j"][0] == Money("345", "JPY")
    books_agree()


@pytest.mark.django_db
def test_realized_fx_and_processor_lines(clerk, rates, make_world) -> None:
    # given
    world = make_world(INVOICES, CURRENCIES)
    # when
    (jpy, eur) = in_batch(clerk, world, [ITEMS[8], ITEMS[10]])
    # then cash at the payment date's rate, AR at the issue rate, the difference realized
    roles = dict(Account.objects.exclude(role=None).values_list("pk", "role"))

    def lines(payment: Payment) -> list[tuple]:
        return sorted(
            (roles[x.account_id], x.debit, x.credit, x.functional_debit, x.functional_credit)
            for x in JournalEntry.objects.get(pk=payment.ledger_entry_id).lines.all()
        )

    assert lines(jpy) == [
        (AccountRole.ACCOUNTS_RECEIVABLE, D(0), D("5000"), D(0), D("33.0000")),
        (AccountRole.CASH, D("5000"), D(0), D("35.5000"), D(0)),
        (AccountRole.FX_GAIN_LOSS, D(0), D(0), D(0), D("2.5000")),
    ]
    assert lines(eur) == [
        (AccountRole.ACCOUNTS_RECEIVABLE, D(0), D("99.99"), D(0), D("108.2392")),
        (AccountRole.FX_GAIN_LOSS, D(0), D(0), D("1.1199"), D(0)),
        (AccountRole.PROCESSOR_CLEARING, D("99.99"), D(0), D("107.1193"), D(0)),
    ]
    books_agree()


@pytest.mark.django_db
def test_a_refused_item_leaves_the_others_recorded_and_changes_nothing_itself(
    clerk, rates, make_world
) -> None:
    # given an invoice paid meanwhile
    world = make_world(INVOICES, CURRENCIES)
    paid_meanwhile = world.invoices["b1"]
    one_by_one(clerk, world, [Item("b", "40.00", "USD", (("b1", "40.00"),))])
    entries = JournalEntry.objects.count()
    # when a batch pays it again among others
    result = payments_record_batch(
        actor=clerk,
        items=[
            ITEMS[0].batch(world),
            Item("b", "40.00", "USD", (("b1", "40.00"),)).batch(world),
            ITEMS[2].batch(world),
        ],
    )
    # then that item is reported, the others are recorded
    assert [p is not None for p in result.payments] == [True, False, True]
    assert isinstance(result.refused[1], OverAllocation)
    assert "is paid; it takes no payment" in result.refused[1].message
    assert JournalEntry.objects.count() == entries + 2
    paid_meanwhile.refresh_from_db()
    assert paid_meanwhile.amount_paid == Money("40.00", "USD")
    assert Payment.objects.filter(customer=world.customers["b"]).count() == 1
    assert all(p.status == PaymentStatus.SUCCEEDED for p in result.recorded)
    books_agree()


@pytest.mark.django_db
def test_a_ledger_refusal_leaves_its_item_out_and_the_rest_replanned(
    clerk, rates, make_world, finance_admin
) -> None:
    # given the processor clearing account closed through the payment date
    world = make_world(INVOICES, CURRENCIES)
    clearing = Account.objects.get(role=AccountRole.PROCESSOR_CLEARING)
    account_lock_set(account=clearing, lock_date=PAID, reason="closed", actor=finance_admin)
    entries = JournalEntry.objects.count()
    # when a card payment of a3 comes first, then a wire paying a3 in full
    result = payments_record_batch(
        actor=clerk,
        items=[
            Item("a", "80.00", "USD", (("a3", "80.00"),), method="credit_card").batch(world),
            Item("a", "80.00", "USD", (("a3", "80.00"),)).batch(world),
        ],
    )
    # then the card payment is refused by the ledger and the wire pays the invoice
    assert result.refused[0].code == "period_locked"
    assert result.payments[0] is None
    assert result.payments[1] is not None
    assert JournalEntry.objects.count() == entries + 1
    invoice = Invoice.objects.get(pk=world.invoices["a3"].pk)
    assert (invoice.status, invoice.amount_paid) == (InvoiceStatus.PAID, Money("80.00", "USD"))
    books_agree()


@pytest.mark.django_db
def test_refusals_of_the_whole_batch(make_user, clerk, rates, make_world) -> None:
    world = make_world(INVOICES, CURRENCIES)
    # an auditor may not record payments
    with pytest.raises(PermissionDeniedError):
        payments_record_batch(actor=make_user("auditor"), items=[ITEMS[0].batch(world)])
    # an unknown method or a non-positive amount is refused per item
    result = payments_record_batch(
        actor=clerk,
        items=[
            Item("a", "100.00", "USD", (("a1", "100.00"),), method="barter").batch(world),
            Item("a", "0.00", "USD", ()).batch(world),
        ],
    )
    assert result.payments == [None, None]
    assert all(isinstance(e, BillingError) for e in result.refused.values())
    assert Payment.objects.count() == 0
    assert payments_record_batch(actor=clerk, items=[]).payments == []
    assert not isinstance(result.refused[0], CurrencyMismatch)


@pytest.mark.django_db
def test_the_batch_takes_few_queries(clerk, rates, make_world, django_assert_max_num_queries):
    # given 30 invoices of one customer
    world = make_world({f"i{n}": ("a", f"{n}.25") for n in range(1, 31)}, {"a": "USD"})
    items = [
        Item("a", f"{n}.25", "USD", ((f"i{n}", f"{n}.25"),)).batch(world) for n in range(1, 31)
    ]
    # when / then: a constant number of statements, not one set per payment
    with django_assert_max_num_queries(30):
        result = payments_record_batch(actor=clerk, items=items)
    assert len(result.recorded) == 30
    books_agree()


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a1", "a2", "a3", "b1"]),
            st.integers(min_value=1, max_value=30_000),
            st.integers(min_value=0, max_value=2_000),
        ),
        min_size=1,
        max_size=8,
    )
)
@pytest.mark.django_db
def test_property_batch_equals_one_by_one(clerk, rates, make_world, draws) -> None:
    # given any sequence of payments (part of an invoice, maybe more than due, maybe extra
    # credit) on two identical worlds
    items = [
        Item(
            key[0],
            str((D(cents) + D(extra)) / 100),
            "USD",
            ((key, str(D(cents) / 100)),),
        )
        for key, cents, extra in draws
    ]
    first, second = make_world(INVOICES, CURRENCIES), make_world(INVOICES, CURRENCIES)
    # when / then
    expected = picture(first, one_by_one(clerk, first, items))
    same(picture(second, in_batch(clerk, second, items)), expected)
    books_agree()
    assert connection.vendor == "postgresql"
