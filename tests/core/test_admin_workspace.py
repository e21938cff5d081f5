"""What every workspace list shares: export of the filtered list (CSV and XLSX, with its own
permission, formulas neutralised, secrets never exported), search by exact amount, and
history written with labels."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from decimal import Decimal

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from openpyxl import load_workbook

from billing.models import Customer, Invoice
from billing.services.customers import customer_create
from billing.services.invoices import LineInput, invoice_create
from core.admin_workspace import WorkspaceAdminMixin, parse_amount
from core.roles import Role
from core.spreadsheet import neutralise
from tests.conftest import verified_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def clerk(make_user: Callable[..., User]) -> User:
    return make_user(Role.AR_CLERK)


def _customer(clerk: User, name: str, currency: str = "USD") -> Customer:
    return customer_create(
        actor=clerk, name=name, email=f"{abs(hash(name))}@example.com", currency=currency
    )


def _invoice(clerk: User, customer: Customer, amount: str) -> Invoice:
    line = LineInput(
        description="Consulting", quantity=Decimal(1), unit_price=Decimal(amount), tax_rate=0
    )
    return invoice_create(actor=clerk, customer_id=customer.pk, lines=[line], issue=False)


def _export(client, path: str, fmt: int) -> bytes:
    response = client.post(path, {"format": str(fmt), "resource": "0"})
    assert response.status_code == 200, response.content[:500]
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_csv_export_holds_the_filtered_rows_with_labels_and_no_formula(clerk) -> None:
    # given two customers, one of them named like a spreadsheet formula
    _customer(clerk, '=HYPERLINK("http://evil.example","Click")')
    _customer(clerk, "Plain Ltd")
    client = verified_client(clerk)

    # when the clerk exports the list searched for the formula customer
    body = _export(client, "/admin/billing/customer/export/?q=HYPERLINK", fmt=0)

    # then only that row is exported, headed by labels, the name kept as text
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    assert [row["Name"] for row in rows] == ['\'=HYPERLINK("http://evil.example","Click")']


def test_xlsx_export_opens_with_amounts_as_numbers_and_choice_labels(clerk) -> None:
    # given
    acme = _customer(clerk, "Acme Corp")
    _invoice(clerk, acme, "1631.25")
    client = verified_client(clerk)

    # when
    body = _export(client, "/admin/billing/invoice/export/", fmt=1)

    # then
    sheet = load_workbook(io.BytesIO(body)).active
    header = [cell.value for cell in sheet[1]]
    row = dict(zip(header, [cell.value for cell in sheet[2]], strict=True))
    assert row["Customer"] == "Acme Corp"
    assert row["Status"] == "Draft"
    assert Decimal(str(row["Total"])) == Decimal("1631.25")
    assert "Snapshot" not in header  # a JSON document is not a spreadsheet value


def test_secrets_are_never_exported() -> None:
    # given every finance model's export
    exported = {}
    for model, model_admin in admin.site._registry.items():
        if isinstance(model_admin, WorkspaceAdminMixin):
            resource = model_admin.get_export_resource_classes(None)[0]
            exported[model._meta.label] = set(resource.fields)

    # then no token, key, secret, hash or bank account number is among the columns
    leaks = {
        (label, name)
        for label, names in exported.items()
        for name in names
        if any(word in name for word in ("token", "secret", "key", "hash", "account_number"))
    }
    assert exported, "the finance admins export"
    assert leaks == set()


def test_export_needs_its_own_permission(make_user: Callable[..., User]) -> None:
    # given an approver (who may view invoices but does not export) and a clerk (who does)
    approver = verified_client(make_user(Role.APPROVER))
    clerk = verified_client(make_user(Role.AR_CLERK))

    # when
    refused = approver.get("/admin/payables/bill/export/")
    allowed = clerk.get("/admin/billing/invoice/export/")
    listing = clerk.get("/admin/billing/invoice/")

    # then
    assert refused.status_code == 403
    assert allowed.status_code == 200
    assert "/admin/billing/invoice/export/" in listing.content.decode()


@pytest.mark.parametrize(
    ("term", "amount"),
    [
        ("1631.25", Decimal("1631.25")),
        ("1,631.25", Decimal("1631.25")),
        ("EUR 1,631.25", Decimal("1631.25")),
        ("1,631.25 EUR", Decimal("1631.25")),
        ("15,000", Decimal("15000")),
        ("INV-2026-000001", None),
        ("1,63", None),
        ("Acme", None),
    ],
)
def test_search_terms_that_name_an_amount(term: str, amount: Decimal | None) -> None:
    assert parse_amount(term) == amount


def test_search_by_exact_amount_finds_the_invoice(clerk) -> None:
    # given
    acme = _customer(clerk, "Acme Corp")
    wanted = _invoice(clerk, acme, "1631.25")
    _invoice(clerk, acme, "1631.20")
    client = verified_client(clerk)

    # when
    response = client.get("/admin/billing/invoice/", {"q": "1,631.25"})

    # then
    assert list(response.context["cl"].result_list) == [wanted]


def test_history_shows_labels_and_formatted_amounts(clerk) -> None:
    # given an invoice issued after it was drafted
    from billing.services.invoices import invoice_issue

    acme = _customer(clerk, "Acme Corp")
    invoice = _invoice(clerk, acme, "1631.25")
    invoice_issue(actor=clerk, invoice_id=invoice.pk)
    client = verified_client(clerk)

    # when
    html = client.get(f"/admin/billing/invoice/{invoice.pk}/history/").content.decode()

    # then the status change reads in words, not codes
    assert "Draft" in html
    assert "Open" in html
    assert "draft" not in html.replace("Draft", "")


def test_neutralise_leaves_ordinary_text_alone() -> None:
    assert neutralise("Acme Corp") == "Acme Corp"
    assert neutralise("-5") == "-5"  # a plain number runs nothing, and stays a number
    assert neutralise("-2+3") == "'-2+3"
    assert neutralise("@SUM(A1)") == "'@SUM(A1)"
    assert neutralise("\t=1") == "'\t=1"


def test_mine_filter_shows_only_the_rows_of_the_person_looking(
    clerk: User, make_user: Callable[..., User]
) -> None:
    # given an invoice of mine and one of a colleague's
    colleague = make_user(Role.AR_CLERK)
    customer = _customer(clerk, "Mine Ltd")
    mine = _invoice(clerk, customer, "111.00")
    theirs = _invoice(colleague, customer, "222.00")
    client = verified_client(clerk)
    # when the list is filtered to "Created by me"
    page = client.get("/admin/billing/invoice/?mine=yes")
    # then only mine is listed, and the filter is offered by its label
    assert page.status_code == 200
    shown = {row.pk for row in page.context["cl"].result_list}
    assert shown == {mine.pk}
    assert theirs.pk not in shown
    assert "Created by me" in page.content.decode()
    # every finance list naming a person offers it
    for model, label in (
        ("payables.Bill", "Captured by me"),
        ("reconciliation.ReconciliationException", "Assigned to me"),
    ):
        model_admin = admin.site._registry[_model(model)]
        assert isinstance(model_admin, WorkspaceAdminMixin)
        assert model_admin.mine_label == label


def _model(label: str):
    from django.apps import apps

    return apps.get_model(label)


def test_detail_pages_show_money_and_decimals_as_people_read_them() -> None:
    from django.db import models
    from djmoney.models.fields import MoneyField
    from djmoney.money import Money

    from core.admin_workspace import readable_value

    money = MoneyField(max_digits=19, decimal_places=4, default_currency="USD")
    rate = models.DecimalField(max_digits=20, decimal_places=10)
    share = models.DecimalField(max_digits=9, decimal_places=4)
    # money in its currency's minor units, grouped, the code after it
    assert readable_value(Money("1609.5000", "USD"), money, "-") == "1,609.50 USD"
    assert readable_value(Money("15000", "JPY"), money, "-") == "15,000 JPY"
    assert readable_value(Money("1.6280", "KWD"), money, "-") == "1.628 KWD"
    # decimals without their storage zeros, never fewer than two places
    assert readable_value(Decimal("1.5000"), share, "-") == "1.50"
    assert readable_value(Decimal("1.1234567000"), rate, "-") == "1.1234567"
    assert readable_value(Decimal("12500.0000"), share, "-") == "12,500.00"
    # nothing to say: the theme's own display
    assert readable_value(None, money, "-") is None


def test_late_fee_page_has_no_id_and_readable_amounts(make_user: Callable[..., User]) -> None:
    from djmoney.money import Money

    from billing.models import Payment
    from receivables.models import LateFee

    # titles name amounts the same way
    assert str(Payment(amount=Money("1250", "USD"))).endswith(" 1,250.00 USD")
    admin_of_fees = admin.site._registry[LateFee]
    from django.test import RequestFactory

    request = RequestFactory().get("/")
    request.user = make_user(Role.FINANCE_ADMIN)
    assert "id" not in admin_of_fees.get_fields(request, None)


def test_customer_page_links_the_statement_of_account(clerk: User) -> None:
    from django.urls import reverse

    customer = _customer(clerk, "Statement Ltd")
    page = verified_client(clerk).get(reverse("admin:billing_customer_change", args=[customer.pk]))
    assert page.status_code == 200
    assert reverse("admin:reporting_account_statement", args=[customer.pk]) in page.content.decode()
