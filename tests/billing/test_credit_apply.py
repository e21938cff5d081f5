"""Applying a customer's credit balance to an open invoice (issue 12): the service, its
refusals, its posting (with realized FX), the API, the admin page, and the invariants."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from djmoney.money import Money
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.checks import ar_functional_check, ar_subledger_check, customer_credit_check
from billing.enums import InvoiceStatus
from billing.exceptions import BillingError, CurrencyMismatch, InvalidTransition
from billing.models import CreditApplication, Customer, Invoice
from billing.services.credit_balance import customer_credit_apply
from billing.services.customers import customer_create
from billing.services.invoices import LineInput, invoice_create, invoice_void
from billing.services.payments import payment_record
from core.admin_once import FIELD
from core.exceptions import DomainError, PermissionDeniedError
from core.fx import fx_rate_set
from core.ledger.enums import AccountRole
from core.ledger.models import JournalEntry
from core.ledger.selectors import trial_balance
from core.ledger.services import period_lock_set
from tests.conftest import verified_client

D = Decimal


def _overpay(clerk, customer, amount: str) -> None:
    """Leave ``amount`` on the customer's credit balance: a payment allocated to nothing."""
    payment_record(
        actor=clerk,
        customer_id=customer.pk,
        amount=D(amount),
        currency=customer.currency,
        method="wire_transfer",
        allocations=[],
    )


def _lines(entry: JournalEntry) -> dict[str, tuple[Decimal, Decimal, Decimal, Decimal]]:
    return {
        line.account.role or line.account.code: (
            line.debit,
            line.credit,
            line.functional_debit,
            line.functional_credit,
        )
        for line in entry.lines.select_related("account")
    }


def _books_agree() -> None:
    assert trial_balance().is_balanced
    assert ar_subledger_check() == []
    assert ar_functional_check() == []
    assert customer_credit_check() == []


@pytest.mark.django_db
def test_credit_applied_settles_the_invoice_and_posts_credit_against_ar(
    clerk, customer, make_invoice
) -> None:
    # given a 100.00 invoice, issued, and 30.00 of credit from an unallocated payment
    invoice = make_invoice("100.00")
    _overpay(clerk, customer, "30.00")
    # when the whole balance is applied (no amount given)
    application = customer_credit_apply(actor=clerk, invoice_id=invoice.pk)
    # then 30.00 comes off the balance and the invoice, posted Dr customer credit / Cr AR
    invoice.refresh_from_db()
    customer.refresh_from_db()
    assert application.amount == Money("30.00", "USD")
    assert invoice.amount_due == Money("70.00", "USD")
    assert invoice.status == InvoiceStatus.OPEN
    assert customer.credit_balance == Money(0, "USD")
    assert _lines(application.ledger_entry) == {
        AccountRole.CUSTOMER_CREDIT: (D("30"), D(0), D("30"), D(0)),
        AccountRole.ACCOUNTS_RECEIVABLE: (D(0), D("30"), D(0), D("30")),
    }
    _books_agree()


@pytest.mark.django_db
def test_credit_beyond_the_amount_due_stops_at_the_due_and_keeps_the_rest(
    clerk, customer, make_invoice
) -> None:
    # given a 40.00 invoice and 100.00 of credit
    invoice = make_invoice("40.00")
    _overpay(clerk, customer, "100.00")
    # when applied with no amount
    customer_credit_apply(actor=clerk, invoice_id=invoice.pk)
    # then the invoice is paid and 60.00 stays on the balance
    invoice.refresh_from_db()
    customer.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    assert invoice.amount_due == Money(0, "USD")
    assert customer.credit_balance == Money("60.00", "USD")
    _books_agree()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("amount", "code", "field"),
    [
        ("50.01", "insufficient_credit", "amount"),  # more than the 50.00 balance
        ("0", "invalid_amount", "amount"),
        ("-5", "invalid_amount", "amount"),
        ("10.001", None, "amount"),  # below the currency's minor unit
    ],
)
def test_refused_amounts_change_nothing(clerk, customer, make_invoice, amount, code, field) -> None:
    # given a 100.00 invoice and 50.00 of credit
    invoice = make_invoice("100.00")
    _overpay(clerk, customer, "50.00")
    entries = JournalEntry.objects.count()
    # when an amount out of bounds is applied
    with pytest.raises(DomainError) as refused:
        customer_credit_apply(actor=clerk, invoice_id=invoice.pk, amount=D(amount))
    # then it is refused on the amount and nothing changed
    assert refused.value.field == field
    if code:
        assert refused.value.code == code
    invoice.refresh_from_db()
    customer.refresh_from_db()
    assert invoice.amount_due == Money("100.00", "USD")
    assert customer.credit_balance == Money("50.00", "USD")
    assert JournalEntry.objects.count() == entries
    assert not CreditApplication.objects.exists()


@pytest.mark.django_db
def test_more_than_the_amount_due_is_refused(clerk, customer, make_invoice) -> None:
    # given a 20.00 invoice and 50.00 of credit
    invoice = make_invoice("20.00")
    _overpay(clerk, customer, "50.00")
    # when 25.00 is applied
    with pytest.raises(BillingError) as refused:
        customer_credit_apply(actor=clerk, invoice_id=invoice.pk, amount=D("25.00"))
    # then it is refused, naming what is due
    assert refused.value.code == "over_allocation"
    assert "20.00 USD" in refused.value.message


@pytest.mark.django_db
def test_no_balance_another_currency_or_a_closed_invoice_is_refused(
    clerk, customer, make_invoice, finance_admin
) -> None:
    # given an open invoice and no credit
    invoice = make_invoice("100.00")
    # then nothing can be applied
    with pytest.raises(BillingError) as refused:
        customer_credit_apply(actor=clerk, invoice_id=invoice.pk)
    assert refused.value.code == "no_credit_balance"
    # given credit, and a EUR invoice to a USD customer
    _overpay(clerk, customer, "50.00")
    fx_rate_set(base="EUR", quote="USD", rate=D("1.1"), rate_date=timezone.localdate())
    eur = make_invoice("10.00", currency="EUR")
    with pytest.raises(CurrencyMismatch):
        customer_credit_apply(actor=clerk, invoice_id=eur.pk)
    # and a void invoice
    invoice_void(actor=finance_admin, invoice_id=invoice.pk, reason="Wrong customer")
    with pytest.raises(InvalidTransition):
        customer_credit_apply(actor=clerk, invoice_id=invoice.pk)
    customer.refresh_from_db()
    assert customer.credit_balance == Money("50.00", "USD")


@pytest.mark.django_db
def test_roles_without_payments_cannot_apply_credit(
    make_user, clerk, customer, make_invoice
) -> None:
    invoice = make_invoice("100.00")
    _overpay(clerk, customer, "50.00")
    for role in ("ap_clerk", "approver", "auditor"):
        with pytest.raises(PermissionDeniedError):
            customer_credit_apply(actor=make_user(role), invoice_id=invoice.pk)


@pytest.mark.django_db
def test_a_locked_period_refuses_and_leaves_the_balance(
    clerk, customer, make_invoice, finance_admin
) -> None:
    # given credit and an invoice issued a month ago, and the books locked up to yesterday
    today = timezone.localdate()
    invoice = make_invoice("100.00", issue_date=today - timedelta(days=30))
    _overpay(clerk, customer, "50.00")
    period_lock_set(lock_date=today - timedelta(days=1), reason="Month-end", actor=finance_admin)
    # when credit is applied on a locked day
    with pytest.raises(DomainError):
        customer_credit_apply(
            actor=clerk, invoice_id=invoice.pk, applied_date=today - timedelta(days=5)
        )
    # then nothing moved
    customer.refresh_from_db()
    assert customer.credit_balance == Money("50.00", "USD")
    assert not CreditApplication.objects.exists()


@pytest.mark.django_db
def test_foreign_currency_credit_posts_realized_fx(make_user, django_capture_on_commit_callbacks):
    # given an EUR invoice carried at 1.10 and EUR credit received when EUR was 1.25,
    # applied today at 1.20
    admin = make_user("finance_admin")
    today = timezone.localdate()
    issued = today - timedelta(days=20)
    fx_rate_set(base="EUR", quote="USD", rate=D("1.10"), rate_date=issued)
    fx_rate_set(base="EUR", quote="USD", rate=D("1.25"), rate_date=today - timedelta(days=10))
    fx_rate_set(base="EUR", quote="USD", rate=D("1.20"), rate_date=today)
    customer = customer_create(actor=admin, name="Lyon SA", email="ap@lyon.example", currency="EUR")
    with django_capture_on_commit_callbacks(execute=False):
        invoice = invoice_create(
            actor=admin,
            customer_id=customer.pk,
            issue_date=issued,
            issue=True,
            lines=[LineInput(description="Plan", quantity=D(1), unit_price=D(200), tax_rate=D(0))],
        )
    payment_record(
        actor=admin,
        customer_id=customer.pk,
        amount=D("50.00"),
        currency="EUR",
        method="wire_transfer",
        received_date=today - timedelta(days=10),
        allocations=[],
    )
    # when the 50.00 EUR are applied
    application = customer_credit_apply(actor=admin, invoice_id=invoice.pk)
    # then credit leaves at today's rate (60.00 USD), AR at the invoice's (55.00 USD): 5.00 gain
    lines = _lines(application.ledger_entry)
    assert lines[AccountRole.CUSTOMER_CREDIT] == (D(50), D(0), D(60), D(0))
    assert lines[AccountRole.ACCOUNTS_RECEIVABLE] == (D(0), D(50), D(0), D(55))
    assert lines[AccountRole.FX_GAIN_LOSS] == (D(0), D(0), D(0), D(5))
    _books_agree()


@pytest.mark.django_db
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    due=st.decimals(min_value=D("0.01"), max_value=D("5000"), places=2),
    credit=st.decimals(min_value=D("0.01"), max_value=D("5000"), places=2),
    part=st.one_of(st.none(), st.decimals(min_value=D("0.01"), max_value=D("5000"), places=2)),
)
def test_property_credit_and_due_move_together_and_the_books_agree(
    clerk, make_invoice, due, credit, part
) -> None:
    # given an invoice and a credit balance of any size (a customer of its own each time)
    customer = customer_create(
        actor=clerk, name="Prop Ltd", email="ap@prop.example", currency="USD"
    )
    invoice = make_invoice(str(due), on=customer)
    _overpay(clerk, customer, str(credit))
    before = Customer.objects.get(pk=customer.pk).credit_balance.amount
    due_before = invoice.amount_due.amount
    # when any amount (or the default) is applied
    try:
        application = customer_credit_apply(actor=clerk, invoice_id=invoice.pk, amount=part)
        applied = application.amount.amount
    except BillingError:
        applied = D(0)
        assert part is not None
        assert part > before or part > due_before
    # then what left the balance is what the invoice lost, never more than either had
    invoice.refresh_from_db()
    after = Customer.objects.get(pk=customer.pk).credit_balance.amount
    assert before - after == applied == due_before - invoice.amount_due.amount
    assert applied <= min(before, due_before)
    if part is None:
        assert applied == min(before, due_before)
    _books_agree()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_applications_never_overdraw_the_balance(make_user) -> None:
    # given 100.00 of credit and ten open invoices of 30.00
    clerk = make_user("ar_clerk")
    customer = customer_create(actor=clerk, name="Acme", email="a@acme.example", currency="USD")
    invoices = [
        invoice_create(
            actor=clerk,
            customer_id=customer.pk,
            issue=True,
            lines=[LineInput(description="Plan", quantity=D(1), unit_price=D(30), tax_rate=D(0))],
        )
        for _ in range(10)
    ]
    _overpay(clerk, customer, "100.00")
    barrier = threading.Barrier(10)
    outcomes: list[str] = []
    lock = threading.Lock()

    def apply(invoice: Invoice) -> None:
        barrier.wait()
        try:
            customer_credit_apply(actor=clerk, invoice_id=invoice.pk, amount=D("30.00"))
            result = "ok"
        except BillingError as exc:
            result = exc.code
        finally:
            connection.close()
        with lock:
            outcomes.append(result)

    # when ten clerks apply 30.00 each at once
    threads = [threading.Thread(target=apply, args=(i,)) for i in invoices]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # then three succeed, seven are refused, and 10.00 is left
    assert outcomes.count("ok") == 3
    assert outcomes.count("insufficient_credit") == 7
    assert Customer.objects.get(pk=customer.pk).credit_balance == Money("10.00", "USD")
    _books_agree()


@pytest.mark.django_db
def test_api_applies_credit_and_answers_refusals_with_a_reason(
    client_for, clerk, customer, make_invoice
) -> None:
    invoice = make_invoice("100.00")
    _overpay(clerk, customer, "30.00")
    api = client_for("ar_clerk")
    url = reverse("billing-invoice-apply-credit", args=[invoice.pk])
    # when more than the balance is asked
    refused = api.post(url, {"amount": "31.00"}, format="json")
    # then 4xx with the field and the reason
    assert refused.status_code in (400, 409, 422)
    assert "31.00 USD" in str(refused.json())
    # when 12.50 is applied
    response = api.post(url, {"amount": "12.50"}, format="json")
    # then the invoice answers with what is left due
    assert response.status_code == 200, response.json()
    assert D(response.json()["amount_due"]) == D("87.50")
    # an AP clerk may not
    assert client_for("ap_clerk").post(url, {}, format="json").status_code == 403


@pytest.mark.django_db
def test_admin_page_previews_then_applies(make_user, customer, make_invoice) -> None:
    admin = make_user("finance_admin")
    invoice = make_invoice("100.00")
    _overpay(admin, customer, "30.00")
    web = verified_client(admin)
    url = reverse("admin:billing_invoice_apply_credit", args=[invoice.pk])
    # the invoice page offers the action
    page = web.get(reverse("admin:billing_invoice_change", args=[invoice.pk]))
    assert url in page.content.decode()
    # the confirmation shows the amount proposed and the posting, and posts nothing yet
    shown = web.get(url)
    text = shown.content.decode()
    assert shown.status_code == 200
    assert "30.00" in text
    assert "Customer credit balances" in text
    assert not CreditApplication.objects.exists()
    # more than the balance: the service's words on the form
    token = shown.context["once"]
    refused = web.post(url, {"amount": "45.00", "confirm": "1", FIELD: token})
    assert refused.status_code == 200
    assert "more than Acme Corp&#x27;s credit balance" in refused.content.decode()
    # then applied from the button
    done = web.post(url, {"amount": "30.00", "confirm": "1", FIELD: refused.context["once"]})
    assert done.status_code == 302
    invoice.refresh_from_db()
    assert invoice.amount_due == Money("70.00", "USD")
