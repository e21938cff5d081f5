"""The portal's statement of account (issue 14 section 2): every movement of a period with the
running balance, as reporting builds it for staff, on screen and as a PDF; a bad period is
refused with its reason; nobody sees another customer's documents."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.services.customers import customer_create
from billing.services.invoices import LineInput, invoice_create
from billing.services.payments import AllocationInput, payment_record
from core.roles import Role
from tests.portal.test_portal import browser, sign_in

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture(autouse=True)
def commit_callbacks_run_at_once(monkeypatch):
    monkeypatch.setattr("portal.services.transaction.on_commit", lambda func, robust=False: func())


@pytest.fixture
def clerk(make_user):
    return make_user(Role.FINANCE_ADMIN)


def customer_with_documents(clerk, name: str, amount: str):
    customer = customer_create(
        actor=clerk, name=name, email=f"ap@{name.lower()}.example", currency="USD"
    )
    invoice = invoice_create(
        actor=clerk,
        customer_id=customer.pk,
        issue=True,
        lines=[LineInput(description="Plan", quantity=D(1), unit_price=D(amount), tax_rate=D(0))],
    )
    return customer, invoice


def test_the_statement_lists_every_movement_with_the_running_balance(clerk) -> None:
    # given an invoice of 1,200.00 of which 500.00 was paid by wire
    customer, invoice = customer_with_documents(clerk, "Statemented", "1200.00")
    payment_record(
        actor=clerk,
        customer_id=customer.pk,
        amount=D("500.00"),
        currency="USD",
        method="wire_transfer",
        reference="WIRE-77",
        allocations=[AllocationInput(invoice_id=invoice.pk, amount=D("500.00"))],
    )
    # and another customer's invoice
    _, theirs = customer_with_documents(clerk, "Other", "999.00")
    client = browser()
    sign_in(client, customer)
    # when the customer opens the statement (the last 90 days unless they choose)
    page = client.get("/portal/statement")
    # then it shows the opening balance, each movement and the closing balance
    assert page.status_code == 200
    html = page.content.decode()
    today = timezone.localdate()
    assert f"{(today - timedelta(days=90)).isoformat()} to {today.isoformat()}" in html
    assert invoice.number in html
    assert "1,200.00 USD" in html
    assert "&minus;500.00 USD" in html  # the payment lowers the balance
    assert "balance 700.00 USD" in html
    assert html.count("700.00 USD") >= 2  # the closing balance, the balance due today
    assert theirs.number not in html
    assert "<script" not in html
    assert "default-src 'none'" in page["Content-Security-Policy"]
    # and its PDF comes as a download
    pdf = client.get(
        "/portal/statement",
        {
            "date_from": (today - timedelta(days=30)).isoformat(),
            "date_to": today.isoformat(),
            "format": "pdf",
        },
    )
    assert pdf.status_code == 200
    assert pdf["Content-Type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    assert pdf["Content-Disposition"].startswith("attachment; filename=")
    assert pdf["Content-Disposition"].endswith('.pdf"')


def test_a_period_before_the_documents_opens_and_closes_at_nothing(clerk) -> None:
    customer, invoice = customer_with_documents(clerk, "Early", "80.00")
    client = browser()
    sign_in(client, customer)
    page = client.get("/portal/statement", {"date_from": "2020-01-01", "date_to": "2020-12-31"})
    assert page.status_code == 200
    html = page.content.decode()
    assert "Nothing happened on your account in this period." in html
    assert "Balance on 2020-12-31" in html
    assert invoice.number in html  # still listed among today's open items


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ({"date_from": "2026-06-30", "date_to": "2026-06-01"}, "after it ends"),
        ({"date_from": "1990-01-01", "date_to": "2026-06-01"}, "at most"),
        ({"date_from": "2026-13-40", "date_to": "2026-06-01"}, "Enter a valid date"),
        ({"date_from": "", "date_to": "2026-06-01"}, "This field is required"),
        ({"date_from": "2026-06-30", "date_to": "2026-06-01", "format": "pdf"}, "after it ends"),
    ],
)
def test_a_bad_period_is_refused_with_its_reason(clerk, query, reason) -> None:
    customer, _ = customer_with_documents(clerk, "Choosy", "80.00")
    client = browser()
    sign_in(client, customer)
    page = client.get("/portal/statement", query)
    assert page.status_code == 400
    assert page["Content-Type"].startswith("text/html")
    assert reason in page.content.decode()


def test_the_statement_needs_a_session() -> None:
    assert browser().get("/portal/statement").status_code == 401
    assert browser().get("/portal/statement", {"format": "pdf"}).status_code == 401
