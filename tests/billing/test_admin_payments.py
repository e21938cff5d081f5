"""Recording a payment in the admin: allocations proposed oldest due first, edited, recorded
through payment_record; the service's refusals shown on the form, nothing recorded."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone
from djmoney.money import Money

from billing.enums import InvoiceStatus
from billing.models import Customer, Invoice, Payment
from core.ledger.models import JournalEntry
from core.ledger.services import period_lock_set
from core.roles import Role
from tests.conftest import verified_client

D = Decimal
pytestmark = pytest.mark.django_db
ADD = "/admin/billing/payment/add/"


@pytest.fixture
def clerk_client(make_user: Callable[..., User]) -> Any:
    return verified_client(make_user(Role.AR_CLERK))


@pytest.fixture
def two_open(make_invoice: Callable[..., Invoice]) -> tuple[Invoice, Invoice]:
    older = make_invoice("100.00", due_date=timezone.localdate() + timedelta(days=5))
    newer = make_invoice("250.00", due_date=timezone.localdate() + timedelta(days=20))
    return older, newer


def payment_form(customer: Customer, amount: str, **extra: str) -> dict[str, str]:
    return {
        "customer": str(customer.pk),
        "amount": amount,
        "currency": "USD",
        "method": "wire_transfer",
        "received_date": timezone.localdate().isoformat(),
        "reference": "WIRE-4711",
        **extra,
    }


def rows(*allocations: tuple[Invoice, str]) -> dict[str, str]:
    data = {
        "alloc-TOTAL_FORMS": str(len(allocations)),
        "alloc-INITIAL_FORMS": str(len(allocations)),
        "alloc-MIN_NUM_FORMS": "0",
        "alloc-MAX_NUM_FORMS": "1000",
    }
    for n, (invoice, amount) in enumerate(allocations):
        data |= {f"alloc-{n}-invoice": str(invoice.pk), f"alloc-{n}-amount": amount}
    return data


def test_the_amount_is_proposed_oldest_due_first(clerk_client, customer, two_open) -> None:
    # given two open invoices, 100.00 due first and 250.00 due later
    older, newer = two_open

    # when the clerk types 300.00 and asks for a proposal
    response = clerk_client.post(ADD, {**payment_form(customer, "300.00"), "_propose": "1"})

    # then the older is paid in full and the rest goes to the newer; nothing is recorded
    assert response.status_code == 200
    proposed = {row.invoice.pk: row.form["amount"].value() for row in response.context["rows"]}
    assert proposed == {older.pk: "100.00", newer.pk: "200.00"}
    assert Payment.objects.count() == 0


def test_records_a_payment_with_the_allocations_as_edited(clerk_client, customer, two_open) -> None:
    # given two open invoices
    older, newer = two_open
    entries = JournalEntry.objects.count()

    # when the clerk records 300.00, applied by hand: 50.00 and 250.00
    response = clerk_client.post(
        ADD,
        {
            **payment_form(customer, "300.00"),
            **rows((older, "50.00"), (newer, "250.00")),
            "_save": "1",
        },
    )

    # then the payment is recorded as shown, posted, and the invoices reflect it
    assert response.status_code == 302
    payment = Payment.objects.get()
    assert payment.reference == "WIRE-4711"
    assert payment.amount == Money("300.00", "USD")
    assert {a.invoice_id: a.amount.amount for a in payment.allocations.all()} == {
        older.pk: D("50.00"),
        newer.pk: D("250.00"),
    }
    older.refresh_from_db()
    newer.refresh_from_db()
    assert older.amount_due == Money("50.00", "USD")
    assert newer.status == InvoiceStatus.PAID
    assert JournalEntry.objects.count() == entries + 1


def test_from_the_invoice_page_the_invoice_and_its_amount_due_are_preselected(
    clerk_client, customer, two_open
) -> None:
    # given the newer invoice's page
    older, newer = two_open

    # when the clerk follows "Record payment" there
    page = clerk_client.get(reverse("admin:billing_invoice_change", args=[newer.pk]))
    response = clerk_client.get(f"{ADD}?invoice={newer.pk}")

    # then the form is for its customer, its amount due, applied to it alone
    assert f"{ADD}?invoice={newer.pk}" in page.content.decode()
    form = response.context["form"]
    assert (form["customer"].value(), form["amount"].value()) == (customer.pk, "250.00")
    proposed = {row.invoice.pk: row.form["amount"].value() for row in response.context["rows"]}
    assert proposed == {older.pk: None, newer.pk: "250.00"}


def test_over_allocation_is_refused_on_the_form(clerk_client, customer, two_open) -> None:
    # given an invoice with 100.00 due
    older, _ = two_open
    entries = JournalEntry.objects.count()

    # when the clerk applies 150.00 to it
    response = clerk_client.post(
        ADD, {**payment_form(customer, "150.00"), **rows((older, "150.00")), "_save": "1"}
    )

    # then the service's words are on the form and nothing is recorded
    assert response.status_code == 200
    html = response.content.decode()
    assert f"150.00 USD is more than the 100.00 USD due on invoice {older.number}." in html
    assert Payment.objects.count() == 0
    assert JournalEntry.objects.count() == entries


def test_an_amount_finer_than_a_cent_is_refused_on_the_form(clerk_client, customer) -> None:
    # when the clerk types 10.005 USD
    response = clerk_client.post(ADD, {**payment_form(customer, "10.005"), **rows(), "_save": "1"})

    # then the service's message is on the amount and nothing is recorded
    assert response.status_code == 200
    assert response.context["form"].errors["amount"] == [
        "10.005 has more decimals than USD allows (2)."
    ]
    assert Payment.objects.count() == 0


def test_a_payment_in_a_locked_period_is_refused_on_the_form(
    clerk_client, customer, two_open, finance_admin
) -> None:
    # given the books locked through today
    older, _ = two_open
    period_lock_set(lock_date=timezone.localdate(), reason="Month closed", actor=finance_admin)
    entries = JournalEntry.objects.count()

    # when the clerk records a payment received today
    response = clerk_client.post(
        ADD, {**payment_form(customer, "100.00"), **rows((older, "100.00")), "_save": "1"}
    )

    # then the refusal is shown on the page (not a 403/500) and nothing is recorded
    assert response.status_code == 200
    today = timezone.localdate().isoformat()
    assert response.context["form"].non_field_errors() == [
        f"The books are closed through {today}; an entry dated {today} cannot be posted. "
        "Post it in the open period."
    ]
    assert Payment.objects.count() == 0
    assert JournalEntry.objects.count() == entries


def test_roles_without_record_payment_get_no_add_page(make_user) -> None:
    # given an auditor (view only)
    client = verified_client(make_user(Role.AUDITOR))

    # when
    response = client.get(ADD)

    # then
    assert response.status_code == 403
