"""A customer's statement of account (reporting.account_statement and its screen)."""

from __future__ import annotations

import csv
import io
import subprocess
from datetime import date
from decimal import Decimal as D

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from billing.models import Invoice
from billing.services.credit_balance import customer_credit_apply
from billing.services.credit_notes import CreditLineInput, credit_note_issue
from billing.services.customers import customer_create
from billing.services.invoices import (
    LineInput,
    invoice_create,
    invoice_mark_uncollectible,
    invoice_void,
)
from billing.services.links import invoice_url
from billing.services.payments import payment_record
from billing.services.refunds import refund_issue
from core.roles import Role
from reporting.account_statement import account_statement, customer_balance_now

pytestmark = pytest.mark.django_db
URL = "admin:reporting_account_statement"
MARCH = {"date_from": "2026-03-01", "date_to": "2026-03-31"}


def _invoice(admin, customer, net: str, day: date, rate: str = "0"):
    return invoice_create(
        actor=admin,
        customer_id=customer.pk,
        issue=True,
        issue_date=day,
        lines=[
            LineInput(description="Service", quantity=D(1), unit_price=D(net), tax_rate=D(rate))
        ],
    )


@pytest.fixture
def book(make_user):
    """Acme (USD): before March owes 600.00; in March an invoice of 550.00 (10% tax), a credit
    note of 110.00, a payment of 1,200.00 (160.00 of it left as credit), a refund of 60.00
    from the credit, an invoice of 300.00 and 40.00 of credit applied to it; in April an
    invoice of 250.00, one of 70.00 voided and one of 30.00 written off."""
    admin = make_user(Role.FINANCE_ADMIN)
    acme = customer_create(
        actor=admin, name="Acme", email="billing@acme.example", currency="USD", country="US"
    )
    _invoice(admin, acme, "1000.00", date(2026, 2, 1))
    payment_record(
        actor=admin,
        customer_id=acme.pk,
        amount=D("400.00"),
        currency="USD",
        method="ach",
        received_date=date(2026, 2, 10),
        reference="ACH-1",
    )
    inv2 = _invoice(admin, acme, "500.00", date(2026, 3, 2), rate="0.10")
    credit_note_issue(
        actor=admin,
        invoice_id=inv2.pk,
        reason="Discount",
        lines=[CreditLineInput(description="Discount", amount=D("100.00"))],
        issue_date=date(2026, 3, 5),
    )
    payment_record(
        actor=admin,
        customer_id=acme.pk,
        amount=D("1200.00"),
        currency="USD",
        method="wire_transfer",
        received_date=date(2026, 3, 10),
        reference="WIRE-2",
    )
    refund_issue(
        actor=admin,
        customer_id=acme.pk,
        amount=D("60.00"),
        reason="Goodwill",
        refund_date=date(2026, 3, 15),
    )
    inv3 = _invoice(admin, acme, "300.00", date(2026, 3, 20))
    customer_credit_apply(
        actor=admin, invoice_id=inv3.pk, amount=D("40.00"), applied_date=date(2026, 3, 25)
    )
    _invoice(admin, acme, "250.00", date(2026, 4, 5))
    voided = _invoice(admin, acme, "70.00", date(2026, 4, 10))
    invoice_void(actor=admin, invoice_id=voided.pk, reason="Wrong customer")
    lost = _invoice(admin, acme, "30.00", date(2026, 4, 12))
    invoice_mark_uncollectible(actor=admin, invoice_id=lost.pk, reason="Gone")
    acme.refresh_from_db()
    return acme


def test_march_statement_opening_movements_and_closing(book) -> None:
    # given Acme's book
    # when the statement of March is built
    statement = account_statement(
        customer_id=book.pk, date_from=date(2026, 3, 1), date_to=date(2026, 3, 31)
    )
    # then it opens at 1,000.00 - 400.00 and runs through each document in date order
    assert statement.opening == D("600.00")
    assert [(m.kind, m.charge, m.credit, m.balance) for m in statement.movements] == [
        ("invoice", D("550.00"), D(0), D("1150.00")),
        ("credit_note", D(0), D("110.00"), D("1040.00")),
        ("payment", D(0), D("1200.00"), D("-160.00")),
        ("refund", D("60.00"), D(0), D("-100.00")),
        ("invoice", D("300.00"), D(0), D("200.00")),
        ("credit_applied", D(0), D(0), D("200.00")),
    ]
    assert statement.movements[5].memo_amount == D("40.00")
    # and the closing balance is the opening plus the charges less the credits
    assert statement.charges == D("910.00")
    assert statement.credits == D("1310.00")
    assert statement.closing == D("600.00") + D("910.00") - D("1310.00") == D("200.00")


def test_statement_to_today_closes_at_what_the_customer_owes_less_their_credit(book) -> None:
    # given Acme owes 260.00 + 250.00 on open invoices and holds 60.00 of credit
    assert book.credit_balance.amount == D("60.00")
    # when the statement runs from the first invoice to today
    statement = account_statement(
        customer_id=book.pk, date_from=date(2026, 1, 1), date_to=timezone.localdate()
    )
    # then the void and the write-off take their invoices off again
    assert [(m.kind, m.charge - m.credit) for m in statement.movements[-5:]] == [
        ("invoice", D("250.00")),
        ("invoice", D("70.00")),
        ("invoice", D("30.00")),
        ("void", D("-70.00")),
        ("write_off", D("-30.00")),
    ]
    # and it closes at 510.00 owed less 60.00 of credit
    assert statement.opening == 0
    assert statement.closing == D("450.00") == customer_balance_now(book)


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    invoices=st.lists(st.integers(min_value=1, max_value=90_000), min_size=1, max_size=4),
    payments=st.lists(st.integers(min_value=1, max_value=120_000), max_size=3),
    split_day=st.integers(min_value=1, max_value=28),
)
def test_opening_plus_movements_is_closing_and_closing_is_owed_less_credit(
    finance_admin, invoices, payments, split_day
) -> None:
    # given a new customer with invoices and payments (cents) on days of February
    customer = customer_create(
        actor=finance_admin, name="Prop", email="p@x.example", currency="USD"
    )
    for n, cents in enumerate(invoices, start=1):
        _invoice(finance_admin, customer, str(D(cents) / 100), date(2026, 2, n))
    for n, cents in enumerate(payments, start=1):
        payment_record(
            actor=finance_admin,
            customer_id=customer.pk,
            amount=D(cents) / 100,
            currency="USD",
            method="ach",
            received_date=date(2026, 2, 10 + n),
        )
    customer.refresh_from_db()
    # when the statement is cut at any day
    statement = account_statement(
        customer_id=customer.pk,
        date_from=date(2026, 2, split_day),
        date_to=timezone.localdate(),
    )
    # then opening + movements = closing = open invoices' amount due - credit balance
    assert statement.opening + sum(m.effect for m in statement.movements) == statement.closing
    assert statement.closing == customer_balance_now(customer)
    assert statement.closing == (sum(D(c) for c in invoices) - sum(D(c) for c in payments)) / 100


def _get(client, customer_id, **params):
    return client.get(reverse(URL, args=[customer_id]), {**MARCH, **params})


def test_downloads_open_with_the_closing_balance(client_for, book) -> None:
    # given
    client = client_for(Role.CONTROLLER)
    # when the three files are downloaded
    csv_file = _get(client, book.pk, export="csv")
    xlsx_file = _get(client, book.pk, export="xlsx")
    pdf_file = _get(client, book.pk, export="pdf")
    # then the CSV's last row is the closing balance, 200.00
    rows = list(csv.reader(io.StringIO(csv_file.content.decode())))
    closing = next(r for r in rows if len(r) > 3 and r[3] == "Closing balance")
    assert closing[4:] == ["910.00", "1310.00", "200.00"]
    # and the workbook holds numbers in the currency's format
    sheet = load_workbook(io.BytesIO(xlsx_file.content)).worksheets[0]
    balances = [
        row[6]
        for row in sheet.iter_rows(values_only=True)
        if len(row) > 6 and row[3] == "Closing balance"
    ]
    assert balances == [D("200.00")] or balances == [200]
    # and the PDF's text carries the closing balance
    assert pdf_file["Content-Type"] == "application/pdf"
    text = subprocess.run(
        ["pdftotext", "-", "-"], input=pdf_file.content, capture_output=True, check=True
    ).stdout.decode()
    assert "Statement" in text
    assert "Acme" in text
    assert "USD 200.00" in text


def test_email_to_the_customer_sends_the_pdf_once(client_for, book) -> None:
    # given an AR clerk on March's statement
    client = client_for(Role.AR_CLERK)
    mail.outbox.clear()
    # when they press "Email to the customer"
    response = client.post(reverse(URL, args=[book.pk]), MARCH)
    # then one message went to the customer's address with the PDF attached
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["billing@acme.example"]
    (name, content, mimetype) = message.attachments[0]
    assert name == f"statement-{book.pk}-2026-03-01-2026-03-31.pdf"
    assert mimetype == "application/pdf"
    assert content.startswith(b"%PDF")
    assert "200.00 USD" in message.body
    # and each open invoice with the address of the page where it can be paid
    open_invoices = list(Invoice.objects.filter(customer=book, status="open"))
    assert open_invoices
    for invoice in open_invoices:
        line = next(line for line in message.body.splitlines() if invoice.number in line)
        assert invoice_url(invoice_id=invoice.pk) in line


def test_who_may_see_and_who_may_email(client_for, book) -> None:
    # given / when / then: AR clerks see and email; controllers and auditors see only
    mail.outbox.clear()
    for role, see, email in (
        (Role.AR_CLERK, 200, 302),
        (Role.FINANCE_ADMIN, 200, 302),
        (Role.CONTROLLER, 200, 403),
        (Role.AUDITOR, 200, 403),
        (Role.AP_CLERK, 403, 403),
    ):
        client = client_for(role)
        assert _get(client, book.pk).status_code == see, role
        assert client.post(reverse(URL, args=[book.pk]), MARCH).status_code == email, role
    assert len(mail.outbox) == 2


def test_screen_shows_the_statement_and_the_email_button(client_for, book) -> None:
    # given / when
    response = _get(client_for(Role.AR_CLERK), book.pk)
    # then
    html = response.content.decode()
    assert response.status_code == 200
    assert "Email to the customer" in html
    assert "200.00 USD" in html
    assert "Opening balance" in html


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"date_from": "2026-04-01", "date_to": "2026-03-01"}, "after it ends"),
        ({"date_from": "2000-01-01", "date_to": "2026-03-01"}, "at most 20 years"),
        ({"date_from": "yesterday", "date_to": "2026-03-01"}, "Enter a valid date"),
    ],
)
def test_bad_periods_are_explained(client_for, book, params, message) -> None:
    # given / when
    response = client_for(Role.AR_CLERK).get(reverse(URL, args=[book.pk]), params)
    # then a message, not a server error, and no download
    assert response.status_code == 400
    assert message in response.content.decode()


def test_unknown_customer_is_explained(client_for, db) -> None:
    # given / when
    response = client_for(Role.CONTROLLER).get(reverse(URL, args=[999999]), MARCH)
    # then
    assert response.status_code == 404
    assert "No customer 999999" in response.content.decode()


def test_statement_queries_do_not_grow_with_the_documents(book, django_assert_max_num_queries):
    # given Acme's 11 documents, a void and a write-off
    # when / then the statement reads each kind of document once
    with django_assert_max_num_queries(11):
        statement = account_statement(
            customer_id=book.pk, date_from=date(2026, 1, 1), date_to=timezone.localdate()
        )
    assert len(statement.movements) == 13
