"""Credit notes: full and partial, applied to the amount due, then to the credit balance."""

from __future__ import annotations

from decimal import Decimal

import pytest
from djmoney.money import Money

from billing.enums import InvoiceStatus
from billing.exceptions import BillingError, InvalidTransition
from billing.models import CreditNote
from billing.services.credit_notes import CreditLineInput, credit_note_issue
from billing.services.invoices import LineInput, invoice_create, invoice_void
from billing.services.payments import payment_record
from core.exceptions import PermissionDeniedError
from core.ledger.enums import AccountRole
from core.ledger.models import Account, JournalEntry
from core.ledger.selectors import account_balances, trial_balance

D = Decimal
pytestmark = pytest.mark.django_db


@pytest.fixture
def taxed_invoice(clerk, customer):
    return invoice_create(
        actor=clerk,
        customer_id=customer.pk,
        issue=True,
        lines=[
            LineInput(description="Plan", quantity=D(1), unit_price=D("100.00")),
            LineInput(description="Setup", quantity=D(1), unit_price=D("50.00")),
        ],
    )


def balance(role: str) -> Decimal:
    b = account_balances(account=Account.objects.get(role=role))
    return b["USD"].balance if "USD" in b else D(0)


def test_full_credit_note_reverses_revenue_and_tax_and_settles_the_invoice(
    taxed_invoice, finance_admin
) -> None:
    # given an open invoice of 150.00 + 13.13 tax (8.75 + 4.38)
    assert taxed_invoice.total == Money("163.13", "USD")
    # when it is credited in full
    note = credit_note_issue(
        actor=finance_admin, invoice_id=taxed_invoice.pk, reason="service never delivered"
    )
    # then
    assert note.number == "CN-" + note.issue_date.strftime("%Y") + "-000001"
    assert (note.subtotal, note.tax, note.total) == (
        Money("150.00", "USD"),
        Money("13.13", "USD"),
        Money("163.13", "USD"),
    )
    taxed_invoice.refresh_from_db()
    assert taxed_invoice.status == InvoiceStatus.PAID
    assert taxed_invoice.amount_due == Money(0, "USD")
    assert sorted(note.ledger_entry.lines.values_list("account__role", "debit", "credit")) == [
        ("accounts_receivable", D(0), D("163.13")),
        ("revenue", D("150.00"), D(0)),
        ("tax_payable", D("13.13"), D(0)),
    ]
    assert balance(AccountRole.REVENUE) == 0
    assert balance(AccountRole.TAX_PAYABLE) == 0
    assert balance(AccountRole.ACCOUNTS_RECEIVABLE) == 0


def test_partial_credit_on_a_paid_invoice_goes_to_the_credit_balance(
    taxed_invoice, clerk, customer, finance_admin
) -> None:
    payment_record(
        actor=clerk, customer_id=customer.pk, amount=D("163.13"), currency="USD", method="ach"
    )
    note = credit_note_issue(
        actor=finance_admin,
        invoice_id=taxed_invoice.pk,
        reason="discount agreed",
        lines=[CreditLineInput(description="Goodwill", amount=D("20.00"))],
    )
    # 20.00 + 1.75 tax at the invoice's 8.75 %
    assert (note.total, note.applied_to_invoice, note.applied_to_balance) == (
        Money("21.75", "USD"),
        Money("0", "USD"),
        Money("21.75", "USD"),
    )
    customer.refresh_from_db()
    assert customer.credit_balance == Money("21.75", "USD")
    assert balance(AccountRole.CUSTOMER_CREDIT) == D("-21.75")
    assert trial_balance().is_balanced


def test_partial_credit_reduces_the_amount_due_first(
    taxed_invoice, finance_admin, customer
) -> None:
    note = credit_note_issue(
        actor=finance_admin,
        invoice_id=taxed_invoice.pk,
        reason="late delivery",
        lines=[CreditLineInput(description="Late delivery", amount=D("10.00"), tax_rate=D(0))],
    )
    taxed_invoice.refresh_from_db()
    assert note.applied_to_invoice == Money("10.00", "USD")
    assert taxed_invoice.amount_due == Money("153.13", "USD")
    assert taxed_invoice.status == InvoiceStatus.OPEN
    customer.refresh_from_db()
    assert customer.credit_balance == Money(0, "USD")


def test_crediting_more_than_the_invoice_is_refused(taxed_invoice, finance_admin) -> None:
    credit_note_issue(actor=finance_admin, invoice_id=taxed_invoice.pk, reason="all")
    entries = JournalEntry.objects.count()
    with pytest.raises(BillingError, match="would credit more"):
        credit_note_issue(
            actor=finance_admin,
            invoice_id=taxed_invoice.pk,
            reason="again",
            lines=[CreditLineInput(description="x", amount=D("1.00"))],
        )
    assert CreditNote.objects.count() == 1
    assert JournalEntry.objects.count() == entries


def test_void_and_draft_invoices_take_no_credit_note(
    clerk, customer, finance_admin, make_invoice
) -> None:
    draft = make_invoice("10.00", issue=False)
    with pytest.raises(InvalidTransition):
        credit_note_issue(actor=finance_admin, invoice_id=draft.pk, reason="x")
    voided = make_invoice("10.00")
    invoice_void(actor=finance_admin, invoice_id=voided.pk, reason="wrong customer")
    with pytest.raises(InvalidTransition):
        credit_note_issue(actor=finance_admin, invoice_id=voided.pk, reason="x")


def test_clerk_cannot_issue_credit_notes(taxed_invoice, clerk) -> None:
    with pytest.raises(PermissionDeniedError):
        credit_note_issue(actor=clerk, invoice_id=taxed_invoice.pk, reason="x")
    assert CreditNote.objects.count() == 0


def test_credit_note_through_the_api(integration_client, taxed_invoice) -> None:
    response = integration_client.post(
        "/api/billing/credit-notes",
        {
            "invoice": taxed_invoice.pk,
            "reason": "returned",
            "lines": [{"description": "Setup", "amount": "50.00"}],
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert {
        k: response.json()[k] for k in ("total", "applied_to_invoice", "applied_to_balance")
    } == {"total": "54.38", "applied_to_invoice": "54.38", "applied_to_balance": "0.00"}
