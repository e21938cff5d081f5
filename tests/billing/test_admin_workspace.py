"""The invoice pages in words and numbers finance staff use: "Partly paid" with what is still
due, nothing due on a void invoice, tax rates as percentages, a catalog price on a line, and
invoices found by their amount."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from billing.enums import InvoiceStatus, PaymentMethodType
from billing.models import Customer, Invoice
from billing.services.invoices import invoice_void
from billing.services.payments import payment_record
from billing.services.subscriptions import price_create, product_create
from core.roles import Role
from tests.conftest import verified_client

D = Decimal
pytestmark = pytest.mark.django_db


@pytest.fixture
def clerk_client(make_user: Callable[..., User]) -> Any:
    return verified_client(make_user(Role.AR_CLERK))


def _pay(clerk: User, customer: Customer, amount: str) -> None:
    payment_record(
        actor=clerk,
        customer_id=customer.pk,
        amount=D(amount),
        currency="USD",
        method=PaymentMethodType.WIRE_TRANSFER,
    )


def test_a_partly_paid_invoice_reads_partly_paid_with_its_amount_due(
    clerk_client, clerk, customer, make_invoice: Callable[..., Invoice]
) -> None:
    # given an invoice of 1,631.25 USD with 631.25 paid
    invoice = make_invoice("1631.25")
    _pay(clerk, customer, "631.25")

    # when the clerk opens it
    html = clerk_client.get(reverse("admin:billing_invoice_change", args=[invoice.pk]))
    html = html.content.decode()

    # then it reads "Partly paid", still open underneath, with 1,000.00 USD due
    assert "Partly paid" in html
    assert "1,000.00 USD" in html
    assert "1,631.25 USD" in html
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.OPEN


def test_a_void_invoice_shows_no_amount_due(
    clerk_client, finance_admin, make_invoice: Callable[..., Invoice]
) -> None:
    # given a voided invoice
    invoice = make_invoice("250.00")
    invoice_void(actor=finance_admin, invoice_id=invoice.pk, reason="Wrong customer")

    # when the list is shown
    response = clerk_client.get(reverse("admin:billing_invoice_changelist"))

    # then its amount due is "-", and its status is Void
    row = response.context["cl"].model_admin
    invoice.refresh_from_db()
    assert row.amount_due_amount(invoice) == "-"
    assert row.status_text(invoice) == "Void"
    assert "250.00 USD" in response.content.decode()


@pytest.mark.parametrize("term", ["1631.25", "1,631.25", "1000.00"])
def test_an_invoice_is_found_by_its_total_or_its_amount_due(
    term: str, clerk_client, clerk, customer, make_invoice: Callable[..., Invoice]
) -> None:
    # given 1,631.25 USD with 631.25 paid (1,000.00 due), and another invoice
    wanted = make_invoice("1631.25")
    _pay(clerk, customer, "631.25")
    make_invoice("99.00")

    # when the clerk searches the list for the amount
    response = clerk_client.get(reverse("admin:billing_invoice_changelist"), {"q": term})

    # then only that invoice is found
    assert [i.pk for i in response.context["cl"].result_list] == [wanted.pk]


def test_a_payment_is_found_by_its_amount(clerk_client, clerk, customer, make_invoice) -> None:
    # given two payments
    make_invoice("2000.00")
    _pay(clerk, customer, "1631.25")
    _pay(clerk, customer, "10.00")

    # when
    response = clerk_client.get(reverse("admin:billing_payment_changelist"), {"q": "1,631.25"})

    # then
    assert [p.amount.amount for p in response.context["cl"].result_list] == [D("1631.25")]


def test_a_line_from_a_catalog_price_and_a_tax_rate_in_percent(clerk_client, customer) -> None:
    # given a catalog price of 49.00 USD per seat
    product = product_create(actor=None, name="Pro seats")
    price = price_create(
        actor=None,
        product_id=product.pk,
        currency="USD",
        type="per_unit",
        interval="month",
        unit_amount=D("49.00"),
        nickname="Pro monthly",
    )

    # when the clerk adds a draft with one line: the price, 5 seats, 8.75 % tax
    response = clerk_client.post(
        reverse("admin:billing_invoice_add"),
        {
            "customer": str(customer.pk),
            "currency": "",
            "issue_date": "",
            "due_date": "",
            "memo": "",
            "lines-TOTAL_FORMS": "1",
            "lines-INITIAL_FORMS": "0",
            "lines-MIN_NUM_FORMS": "0",
            "lines-MAX_NUM_FORMS": "1000",
            "lines-0-catalog_price": str(price.pk),
            "lines-0-description": "",
            "lines-0-quantity": "5",
            "lines-0-price": "",
            "lines-0-tax_rate": "8.75",
            "lines-0-period_start": "",
            "lines-0-period_end": "",
        },
    )

    # then the line is priced from the catalog, the rate kept as the fraction 0.0875
    assert response.status_code == 302
    line = Invoice.objects.get().lines.get()
    assert (line.description, line.unit_price.amount, line.tax_rate) == (
        "Pro monthly",
        D("49.00"),
        D("0.0875"),
    )
    page = clerk_client.get(reverse("admin:billing_invoice_change", args=[line.invoice_id]))
    assert 'value="8.75"' in page.content.decode()


def test_a_whole_invoice_number_finds_that_invoice_only(
    clerk_client, make_invoice: Callable[..., Invoice]
) -> None:
    # given two issued invoices
    wanted = make_invoice("10.00")
    make_invoice("20.00")

    # when the clerk types the number, in any case
    response = clerk_client.get(
        reverse("admin:billing_invoice_changelist"), {"q": wanted.number.lower()}
    )

    # then
    assert list(response.context["cl"].result_list) == [wanted]


def test_the_currency_filter_offers_the_currencies_in_use_and_filters_by_one(
    clerk_client, clerk, make_invoice: Callable[..., Invoice]
) -> None:
    # given a USD invoice and a customer billed in EUR
    from billing.services.customers import customer_create

    usd = make_invoice("10.00", issue=False)
    muller = customer_create(
        actor=clerk, name="Müller GmbH", email="ap@muller.example", currency="EUR"
    )
    eur = make_invoice("10.00", issue=False, on=muller)

    # when
    page = clerk_client.get(reverse("admin:billing_invoice_changelist"))
    filtered = clerk_client.get(reverse("admin:billing_invoice_changelist"), {"currency": "EUR"})

    # then
    html = page.content.decode()
    assert "?currency=EUR" in html
    assert "?currency=USD" in html
    assert list(filtered.context["cl"].result_list) == [eur]
    assert usd not in filtered.context["cl"].result_list
