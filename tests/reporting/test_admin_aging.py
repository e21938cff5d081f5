"""The AR and AP aging screens of the workspace (reporting.admin_aging)."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal as D

import pytest
from django.urls import reverse

from billing.services.customers import customer_create
from billing.services.invoices import LineInput, invoice_create
from core.fx import fx_rate_set
from core.roles import Role
from payables.services.bills import BillLineInput, bill_approve, bill_create
from payables.services.vendors import BankDetails, vendor_activate, vendor_create

AS_OF = date(2026, 6, 30)
AR = "admin:reporting_ar_aging"
AP = "admin:reporting_ap_aging"
pytestmark = pytest.mark.django_db


@pytest.fixture
def book(make_user):
    """Invoices of two customers due on chosen days before 2026-06-30, in USD and EUR."""
    admin = make_user(Role.FINANCE_ADMIN)
    fx_rate_set(base="EUR", quote="USD", rate=D("1.1"), rate_date=date(2026, 2, 1))
    acme = customer_create(actor=admin, name="Acme", email="a@x.example", currency="USD")
    euro = customer_create(actor=admin, name="Euro AG", email="e@x.example", currency="EUR")

    def inv(customer, amount: str, due: date):
        return invoice_create(
            actor=admin,
            customer_id=customer.pk,
            issue=True,
            issue_date=date(2026, 2, 1),
            due_date=due,
            lines=[LineInput(description="x", quantity=D(1), unit_price=D(amount), tax_rate=D(0))],
        )

    invoices = {
        "current": inv(acme, "1000.00", date(2026, 6, 30)),  # due today: current
        "d30": inv(acme, "200.00", date(2026, 5, 31)),  # 30 days late: 1-30
        "d31": inv(acme, "300.00", date(2026, 5, 30)),  # 31 days late: 31-60
        "d91": inv(euro, "400.00", date(2026, 3, 31)),  # 91 days late: over 90
    }
    return acme, euro, invoices


def _page(client, name: str, **params):
    return client.get(reverse(name), {"as_of": AS_OF.isoformat(), **params})


def _by_party(response) -> dict[str, list[str]]:
    return {
        str(row[0]).split(">")[1].split("<")[0]: row
        for row in response.context["parties_table"]["rows"]
    }


def test_ar_aging_puts_each_invoice_in_its_bucket(client_for, book) -> None:
    # given invoices due today, 30, 31 and 91 days before the chosen date
    client = client_for(Role.AR_CLERK)
    # when the AR aging is shown as of that date
    response = _page(client, AR)
    # then each customer's amounts are in the right buckets, formatted in their currency
    assert response.status_code == 200
    rows = _by_party(response)
    # Customer, Current, 1-30, 31-60, 61-90, over 90, total
    assert [str(cell) for cell in rows["Acme"][1:6]] == [
        '<span class="whitespace-nowrap">1,000.00 USD</span>',
        '<span class="whitespace-nowrap">200.00 USD</span>',
        '<span class="whitespace-nowrap">300.00 USD</span>',
        "-",
        "-",
    ]
    assert "1,500.00 USD" in str(rows["Acme"][6])
    assert str(rows["Euro AG"][5]) == '<span class="whitespace-nowrap">400.00 EUR</span>'
    # and the totals are per currency, never mixed
    totals = {row[0]: row for row in response.context["totals_table"]["rows"]}
    assert set(totals) == {"EUR", "USD"}
    assert "1,500.00 USD" in str(totals["USD"][6])
    assert "400.00 EUR" in str(totals["EUR"][6])


def test_an_earlier_date_moves_invoices_to_younger_buckets(client_for, book) -> None:
    # given the same invoices, seen 31 days earlier (the 31-day one is then due today)
    client = client_for(Role.AR_CLERK)
    # when
    response = client.get(reverse(AR), {"as_of": "2026-05-30"})
    # then the invoice due 2026-05-30 is current and the one due 2026-06-30 not yet late
    rows = _by_party(response)
    assert "1,500.00 USD" in str(rows["Acme"][1])
    assert [str(cell) for cell in rows["Acme"][2:6]] == ["-", "-", "-", "-"]
    # and the EUR invoice due 2026-03-31 is 60 days late then
    assert "400.00 EUR" in str(rows["Euro AG"][3])


def test_drill_down_lists_the_customers_open_invoices_with_links(client_for, book) -> None:
    # given
    acme, _euro, invoices = book
    client = client_for(Role.AR_CLERK)
    # when the clerk opens Acme's row
    response = _page(client, AR, party=acme.pk)
    # then Acme's three invoices are listed, each linking to its admin page, oldest due first
    html = response.content.decode()
    rows = response.context["items_table"]["rows"]
    assert [row[3] for row in rows] == ["31-60 days", "1-30 days", "Current"]
    for key in ("current", "d30", "d31"):
        assert reverse("admin:billing_invoice_change", args=[invoices[key].pk]) in html
    assert reverse("admin:billing_invoice_change", args=[invoices["d91"].pk]) not in html


def test_csv_export_of_the_summary_and_of_a_drill_down(client_for, book) -> None:
    # given
    acme, _euro, _invoices = book
    client = client_for(Role.CONTROLLER)
    # when both exports are downloaded
    summary = _page(client, AR, export="csv")
    items = _page(client, AR, party=acme.pk, export="csv")
    # then they hold the same figures as the screen, amounts in minor units without separators
    assert summary["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(summary.content.decode())))
    assert rows[0] == [
        "Customer",
        "Currency",
        "Current",
        "1-30 days",
        "31-60 days",
        "61-90 days",
        "Over 90 days",
        "Total",
        "Items",
    ]
    assert rows[1:] == [
        ["Acme", "USD", "1000.00", "200.00", "300.00", "0.00", "0.00", "1500.00", "3"],
        ["Euro AG", "EUR", "0.00", "0.00", "0.00", "0.00", "400.00", "400.00", "1"],
    ]
    item_rows = list(csv.reader(io.StringIO(items.content.decode())))
    assert [row[4] for row in item_rows[1:]] == ["31-60 days", "1-30 days", "Current"]
    assert [row[3] for row in item_rows[1:]] == ["31", "30", "0"]


def test_a_customer_name_never_starts_a_formula_in_the_csv(client_for, make_user) -> None:
    # given a customer whose name starts like a formula, with an open invoice
    admin = make_user(Role.FINANCE_ADMIN)
    evil = customer_create(actor=admin, name="=HYPERLINK(1)", email="x@x.example", currency="USD")
    invoice_create(
        actor=admin,
        customer_id=evil.pk,
        issue=True,
        issue_date=date(2026, 2, 1),
        due_date=date(2026, 6, 1),
        lines=[LineInput(description="x", quantity=D(1), unit_price=D("5"), tax_rate=D(0))],
    )
    # when
    response = _page(client_for(Role.AR_CLERK), AR, export="csv")
    # then
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[1][0] == "'=HYPERLINK(1)"


@pytest.mark.parametrize(
    ("role", "ar", "ap"),
    [
        (Role.AR_CLERK, 200, 403),
        (Role.AP_CLERK, 403, 200),
        (Role.CONTROLLER, 200, 200),
        (Role.AUDITOR, 200, 200),
    ],
)
def test_each_screen_is_for_those_who_may_view_its_documents(client_for, role, ar, ap) -> None:
    # given a user in the role
    client = client_for(role)
    # when they open both screens / then
    assert _page(client, AR).status_code == ar
    assert _page(client, AP).status_code == ap


def test_ap_aging_by_vendor_with_drill_down_to_the_bill(make_user, client_for) -> None:
    # given an approved bill of 250.00 USD due 45 days before the chosen date
    clerk = make_user(Role.AP_CLERK)
    vendor = vendor_create(
        actor=clerk,
        name="Globex Supplies",
        email="globex@vendor.example",
        currency="USD",
        bank=BankDetails(
            account_holder="Globex", routing_number="011000015", account_number="123456789"
        ),
    )
    vendor = vendor_activate(vendor_id=vendor.pk, actor=make_user(Role.CONTROLLER))
    bill = bill_create(
        actor=clerk,
        vendor_id=vendor.pk,
        number="G-77",
        currency="USD",
        bill_date=date(2026, 4, 1),
        due_date=date(2026, 5, 16),
        lines=[BillLineInput(description="Paper", quantity=D(1), unit_price=D("250.00"))],
    )
    bill_approve(bill_id=bill.pk, actor=make_user(Role.APPROVER))
    client = client_for(Role.AP_CLERK)
    # when the AP aging and the vendor's drill-down are shown
    summary = _page(client, AP)
    detail = _page(client, AP, party=vendor.pk)
    # then the bill is 31-60 days late, and the drill-down links to its page
    rows = _by_party(summary)
    assert "250.00 USD" in str(rows["Globex Supplies"][3])
    assert reverse("admin:payables_bill_change", args=[bill.pk]) in detail.content.decode()
    assert "G-77" in detail.content.decode()
