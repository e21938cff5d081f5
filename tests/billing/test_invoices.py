"""Invoices: totals and tax rounding, issue (number, ledger, snapshot), immutability, void,
write-off."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from djmoney.money import Money

from billing.enums import InvoiceStatus
from billing.exceptions import InvalidTransition, InvoiceNotEditable
from billing.models import Invoice, TaxRate
from billing.services.customers import customer_create
from billing.services.invoices import (
    LineInput,
    invoice_create,
    invoice_issue,
    invoice_mark_uncollectible,
    invoice_update_draft,
    invoice_void,
)
from billing.tax import line_amounts
from core.exceptions import PermissionDeniedError
from core.fx import fx_rate_set
from core.ledger.models import JournalEntry
from core.ledger.selectors import account_balances, trial_balance

D = Decimal
pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("currency", "quantity", "price", "rate", "amount", "tax"),
    [
        ("USD", "3", "19.99", "0.0875", "59.97", "5.25"),  # 5.247375 -> 5.25
        ("USD", "1", "0.10", "0.0875", "0.10", "0.01"),  # 0.00875 -> 0.01
        ("USD", "2.5", "3.333", "0.0875", "8.33", "0.73"),  # 8.3325 -> 8.33; 0.728875 -> 0.73
        ("JPY", "3", "1999", "0.10", "5997", "600"),  # 599.7 -> 600
        ("JPY", "1", "105", "0.08", "105", "8"),  # 8.4 -> 8
        ("JPY", "1", "1050", "0.0875", "1050", "92"),  # 91.875 -> 92
        ("KWD", "3", "18.600", "0.05", "55.800", "2.790"),
        ("KWD", "1", "1.0005", "0.0875", "1.001", "0.088"),  # 1.0005 -> 1.001; 0.0875875 -> 0.088
    ],
)
def test_tax_is_rounded_half_up_per_line(currency, quantity, price, rate, amount, tax) -> None:
    result = line_amounts(
        quantity=D(quantity), unit_price=D(price), tax_rate=D(rate), currency=currency
    )
    assert (result.amount, result.tax) == (D(amount), D(tax))


@pytest.mark.parametrize(
    ("currency", "price", "rate", "net", "tax"),
    [
        ("USD", "10.00", "0.0875", "9.20", "0.80"),
        ("JPY", "1100", "0.10", "1000", "100"),
        ("KWD", "1.000", "0.05", "0.952", "0.048"),
    ],
)
def test_tax_inclusive_price_keeps_the_shelf_price(currency, price, rate, net, tax) -> None:
    result = line_amounts(
        quantity=D(1), unit_price=D(price), tax_rate=D(rate), currency=currency, tax_inclusive=True
    )
    assert (result.amount, result.tax, result.gross) == (D(net), D(tax), D(price))


def test_draft_totals_use_the_default_jurisdiction_and_exemption_rates(clerk) -> None:
    # given a customer with no jurisdiction (system default 0.0875), one in a taxed
    # jurisdiction, and an exempt one
    TaxRate.objects.create(jurisdiction="US-OR", name="Oregon", rate=D("0"))
    TaxRate.objects.create(jurisdiction="DE", name="Germany", rate=D("0.19"))
    plain = customer_create(actor=clerk, name="Plain", email="a@x.example", currency="USD")
    german = customer_create(
        actor=clerk, name="GmbH", email="b@x.example", currency="EUR", tax_jurisdiction="DE"
    )
    exempt = customer_create(
        actor=clerk, name="Charity", email="c@x.example", currency="USD", tax_exempt=True
    )
    line = [LineInput(description="Plan", quantity=D(1), unit_price=D("100.00"))]
    # when
    totals = [
        (i.subtotal, i.tax, i.total)
        for i in (
            invoice_create(actor=clerk, customer_id=c.pk, lines=line)
            for c in (plain, german, exempt)
        )
    ]
    # then
    assert totals == [
        (Money("100.00", "USD"), Money("8.75", "USD"), Money("108.75", "USD")),
        (Money("100.00", "EUR"), Money("19.00", "EUR"), Money("119.00", "EUR")),
        (Money("100.00", "USD"), Money("0.00", "USD"), Money("100.00", "USD")),
    ]


def test_issue_assigns_number_due_date_posting_and_snapshot(
    clerk, customer, django_capture_on_commit_callbacks
) -> None:
    # given a draft with a discount line
    draft = invoice_create(
        actor=clerk,
        customer_id=customer.pk,
        issue_date=date(2026, 5, 4),
        lines=[
            LineInput(description="Pro plan", quantity=D(2), unit_price=D("49.50")),
            LineInput(description="Launch discount", quantity=D(1), unit_price=D("-9.00")),
        ],
    )
    assert draft.number is None
    # when
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        invoice = invoice_issue(actor=clerk, invoice_id=draft.pk)
    # then
    assert invoice.status == InvoiceStatus.OPEN
    assert invoice.number == "INV-2026-000001"
    assert invoice.due_date == date(2026, 6, 3)  # 30 days, the system default terms
    assert (invoice.subtotal, invoice.tax, invoice.total) == (
        Money("90.00", "USD"),
        Money("7.87", "USD"),
        Money("97.87", "USD"),
    )  # tax per line: 8.66 (99.00 x 0.0875 = 8.6625) - 0.79 (9.00 x 0.0875 = 0.7875 -> 0.79)
    entry = invoice.ledger_entry
    assert sorted(entry.lines.values_list("account__role", "debit", "credit")) == [
        ("accounts_receivable", D("97.87"), D(0)),
        ("revenue", D(0), D("90.00")),
        ("tax_payable", D(0), D("7.87")),
    ]
    assert entry.entry_date == date(2026, 5, 4)
    assert invoice.snapshot["number"] == "INV-2026-000001"
    assert invoice.snapshot["total"] == "97.87"
    assert [line["amount"] for line in invoice.snapshot["lines"]] == ["99.00", "-9.00"]
    assert len(callbacks) == 1  # PDF and email queued after commit


def test_issued_invoice_is_immutable(clerk, make_invoice) -> None:
    invoice = make_invoice("100.00")
    with pytest.raises(InvoiceNotEditable, match="issue a credit note"):
        invoice_update_draft(
            actor=clerk,
            invoice_id=invoice.pk,
            lines=[LineInput(description="x", quantity=D(1), unit_price=D("1.00"))],
        )
    invoice.refresh_from_db()
    assert invoice.total == Money("100.00", "USD")
    with pytest.raises(InvalidTransition):
        invoice_issue(actor=clerk, invoice_id=invoice.pk)
    assert JournalEntry.objects.count() == 1


def test_draft_can_be_edited(clerk, make_invoice) -> None:
    draft = make_invoice("100.00", issue=False)
    invoice_update_draft(
        actor=clerk,
        invoice_id=draft.pk,
        lines=[LineInput(description="New", quantity=D(3), unit_price=D("10.00"), tax_rate=D(0))],
    )
    draft.refresh_from_db()
    assert draft.total == Money("30.00", "USD")
    assert list(draft.lines.values_list("description", flat=True)) == ["New"]


def test_foreign_currency_invoice_posts_functional_amounts_at_the_issue_rate(clerk) -> None:
    fx_rate_set(base="EUR", quote="USD", rate=D("1.0850"), rate_date=date(2026, 5, 1))
    euro = customer_create(actor=clerk, name="SARL", email="f@x.example", currency="EUR")
    invoice = invoice_create(
        actor=clerk,
        customer_id=euro.pk,
        issue_date=date(2026, 5, 2),
        lines=[LineInput(description="Plan", quantity=D(1), unit_price=D("200.00"), tax_rate=D(0))],
        issue=True,
    )
    assert invoice.fx_rate == D("1.0850")
    ar = invoice.ledger_entry.lines.get(debit__gt=0)
    assert (ar.currency, ar.debit, ar.functional_debit) == ("EUR", D("200.00"), D("217.0000"))


def test_void_reverses_the_posting(make_invoice, finance_admin) -> None:
    invoice = make_invoice("100.00")
    invoice_void(actor=finance_admin, invoice_id=invoice.pk, reason="sent to the wrong customer")
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.VOID
    assert invoice.close_reason == "sent to the wrong customer"
    reversal = JournalEntry.objects.get(reversal_of=invoice.ledger_entry)
    assert reversal.created_by == finance_admin
    ar = account_balances(account=invoice.ledger_entry.lines.get(debit__gt=0).account)
    assert ar["USD"].balance == 0


def test_clerk_cannot_void_and_nothing_changes(clerk, make_invoice) -> None:
    invoice = make_invoice("100.00")
    with pytest.raises(PermissionDeniedError):
        invoice_void(actor=clerk, invoice_id=invoice.pk, reason="x")
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.OPEN
    assert JournalEntry.objects.count() == 1


def test_write_off_posts_bad_debt_for_what_is_due(make_invoice, finance_admin) -> None:
    invoice = make_invoice("250.00")
    invoice_mark_uncollectible(
        actor=finance_admin, invoice_id=invoice.pk, reason="customer bankrupt"
    )
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.UNCOLLECTIBLE
    entry = JournalEntry.objects.get(idempotency_key=f"billing.invoice:{invoice.pk}:write-off")
    assert sorted(entry.lines.values_list("account__role", "debit", "credit")) == [
        ("accounts_receivable", D(0), D("250.00")),
        ("bad_debt", D("250.00"), D(0)),
    ]
    assert trial_balance().is_balanced


def test_zero_total_invoice_is_paid_at_issue_without_posting(make_invoice) -> None:
    invoice = make_invoice("0.00")
    assert invoice.status == InvoiceStatus.PAID
    assert invoice.ledger_entry is None


def test_due_date_follows_customer_terms(clerk, make_invoice, customer) -> None:
    customer.payment_terms = 14
    customer.save()
    invoice = make_invoice("10.00", issue_date=date(2026, 1, 31))
    assert invoice.due_date == date(2026, 1, 31) + timedelta(days=14)
    assert Invoice.objects.filter(status=InvoiceStatus.OPEN).count() == 1


def test_lines_priced_from_the_catalog(clerk, customer) -> None:
    from billing.services.subscriptions import price_create, product_create

    product = product_create(actor=None, name="Support hours")
    hourly = price_create(
        actor=None,
        product_id=product.pk,
        currency="USD",
        type="per_unit",
        interval="month",
        unit_amount=D("120.00"),
    )
    pack = price_create(
        actor=None,
        product_id=product.pk,
        currency="USD",
        type="package",
        interval="month",
        unit_amount=D("500.00"),
        package_size=5,
        nickname="5-hour pack",
    )
    invoice = invoice_create(
        actor=clerk,
        customer_id=customer.pk,
        lines=[
            LineInput(description="", quantity=D(2), price_id=hourly.pk, tax_rate=D(0)),
            LineInput(description="", quantity=D(7), price_id=pack.pk, tax_rate=D(0)),
        ],
    )
    assert [
        (line.description, line.quantity, line.amount.amount) for line in invoice.lines.all()
    ] == [
        ("Support hours", D(2), D("240.00")),
        ("5-hour pack x 7", D(1), D("1000.00")),  # two packages
    ]
    eur = price_create(
        actor=None,
        product_id=product.pk,
        currency="EUR",
        type="flat",
        interval="month",
        unit_amount=D("1.00"),
    )
    from billing.exceptions import BillingError

    with pytest.raises(BillingError, match="is in EUR"):
        invoice_create(
            actor=clerk,
            customer_id=customer.pk,
            lines=[LineInput(description="", quantity=D(1), price_id=eur.pk)],
        )
