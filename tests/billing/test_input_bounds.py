"""Issue 11: every bad input a probe sent to the billing API is a 400 naming its field, with
nothing written; dates stay inside the books' window; posted amounts are whole minor units."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing.models import CreditNote, Customer, Invoice, InvoiceLine, Payment
from core.fx import fx_rate_set
from core.ledger.models import JournalEntry

pytestmark = pytest.mark.django_db
D = Decimal
API = "/api/billing"


@pytest.fixture
def api(client_for):
    return client_for("finance_admin")


@pytest.fixture
def acme(api) -> dict:
    response = api.post(
        f"{API}/customers",
        {"name": "Acme Corp", "email": "ap@acme.example", "currency": "USD"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    return response.json()


def _invoice(api, customer: dict, *lines: dict, **extra):
    return api.post(
        f"{API}/invoices",
        {"customer": customer["id"], "lines": list(lines), **extra},
        format="json",
    )


def _line(quantity: str = "1", unit_price: str = "10.00", **extra) -> dict:
    return {"description": "Item", "quantity": quantity, "unit_price": unit_price, **extra}


def _nothing_written() -> None:
    assert Invoice.objects.count() == 0
    assert InvoiceLine.objects.count() == 0
    assert JournalEntry.objects.count() == 0


@pytest.mark.parametrize(
    ("lines", "extra", "field"),
    [
        # 15-digit quantity and price: Decimal could not even quantize the product.
        ([_line("999999999999999", "999999999999999")], {}, "lines"),
        # 1e11 x 1e5 overflowed the amount column in PostgreSQL.
        ([_line("100000000000", "100000")], {}, "lines[0].unit_price"),
        ([_line("100000000", "100000")], {}, "lines[0].unit_price"),
        # Two lines of 6e11 each fit, their total does not.
        ([_line("1", "600000000000"), _line("1", "600000000000")], {}, "lines"),
        ([_line(period_start="2026-03-31", period_end="2026-03-01")], {}, "lines[0].period_end"),
        ([_line()], {"issue_date": "0001-01-01", "issue": True}, "issue_date"),
        ([_line()], {"issue_date": "9999-12-31", "issue": True}, "issue_date"),
        ([_line()], {"issue_date": "2026-03-10", "due_date": "2026-03-01"}, "due_date"),
        ([_line()], {"memo": "x" * 5001}, "memo"),
        ([_line(unit_price="1.00001")], {}, "lines"),
    ],
)
def test_bad_invoice_input_is_a_400_naming_the_field(api, acme, lines, extra, field) -> None:
    # given a customer / when a probe's invoice is posted
    response = _invoice(api, acme, *lines, **extra)
    # then a 400 with the field named, and nothing written
    assert response.status_code == 400, response.json()
    body = response.json()
    assert field in body["errors"], body
    _nothing_written()


def test_bad_line_inside_the_service_names_the_line(api, acme) -> None:
    # given lines that each pass the serializer, one beyond the line limit when multiplied
    lines = [_line(), _line("99999999", "99999.99")]
    # when posted
    response = _invoice(api, acme, *lines)
    # then the message names that line and its input, with the limit
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "amount_too_large"
    assert list(body["errors"]) == ["lines[1].unit_price"]
    assert body["details"]["limit"] == "1000000000000"
    _nothing_written()


def test_too_many_lines_are_refused_by_the_system_setting(api, acme) -> None:
    # given one more line than limits.document_lines allows
    lines = [_line() for _ in range(1001)]
    # when posted / then refused, naming the lines
    response = _invoice(api, acme, *lines)
    assert response.status_code == 400
    assert response.json()["code"] == "too_many_lines"
    assert "lines" in response.json()["errors"]
    _nothing_written()


def test_invoice_creation_queries_do_not_grow_with_its_lines(api, acme) -> None:
    # given a customer / when an invoice of 10 lines and one of 1,000 (the limit) are posted
    def post(count: int) -> tuple[int, int]:
        lines = [_line(unit_price=f"{n}.00") for n in range(1, count + 1)]
        with CaptureQueriesContext(connection) as queries:
            response = _invoice(api, acme, *lines)
        assert response.status_code == 201, response.json()
        return response.json()["id"], len(queries)

    _, small = post(10)
    invoice_id, large = post(1000)
    # then both take the same queries: the lines go in in bulk
    assert large == small
    invoice = Invoice.objects.get(pk=invoice_id)
    assert invoice.lines.count() == 1000
    assert invoice.subtotal.amount == D(500500)


def test_payment_dates_and_amounts_are_bounded(api, acme) -> None:
    # given an open invoice
    response = _invoice(api, acme, _line(unit_price="100.00", tax_rate="0"), issue=True)
    assert response.status_code == 201
    tomorrow = (timezone.localdate() + timedelta(days=1)).isoformat()
    cases = [
        ({"received_date": "9999-12-31"}, "received_date"),
        ({"received_date": tomorrow}, "received_date"),
        ({"received_date": "1999-12-31"}, "received_date"),
        ({"amount": "10.001"}, "amount"),
        ({"amount": "1000000000000"}, "amount"),
    ]
    for change, field in cases:
        # when a payment with one bad value is posted
        body = {
            "customer": acme["id"],
            "amount": "10.00",
            "currency": "USD",
            "method": "wire_transfer",
        }
        response = api.post(f"{API}/payments", {**body, **change}, format="json")
        # then 400 naming the field, and no payment, no credit
        assert response.status_code == 400, (change, response.json())
        assert field in response.json()["errors"], (change, response.json())
    assert Payment.objects.count() == 0
    assert Customer.objects.get().credit_balance.amount == 0


@pytest.mark.parametrize(
    ("currency", "amount"),
    [("KWD", "1.0005"), ("JPY", "10.5"), ("USD", "0.001")],
)
def test_credit_notes_refuse_amounts_finer_than_the_minor_unit(api, currency, amount) -> None:
    # given an issued invoice in the currency
    customer = api.post(
        f"{API}/customers",
        {"name": "Gulf Trading", "email": "ap@gulf.example", "currency": currency},
        format="json",
    ).json()
    if currency != "USD":
        fx_rate_set(base=currency, quote="USD", rate=D("0.5"), rate_date=timezone.localdate())
    invoice = _invoice(
        api, customer, _line(unit_price="100", tax_rate="0"), issue=True, currency=currency
    ).json()
    # when a credit note of an amount finer than the minor unit is asked for
    response = api.post(
        f"{API}/credit-notes",
        {
            "invoice": invoice["id"],
            "reason": "Goodwill",
            "lines": [{"description": "Credit", "amount": amount, "tax_rate": "0"}],
        },
        format="json",
    )
    # then it is refused, naming the line's amount, instead of being rounded
    assert response.status_code == 400, response.json()
    assert "lines[0].amount" in response.json()["errors"]
    assert CreditNote.objects.count() == 0


def test_void_invoice_reports_nothing_due(api, acme) -> None:
    # given an issued invoice of 80.00
    invoice = _invoice(api, acme, _line(unit_price="80.00", tax_rate="0"), issue=True).json()
    # when it is voided
    response = api.post(f"{API}/invoices/{invoice['id']}/void", {"reason": "Wrong customer"})
    assert response.status_code == 200, response.json()
    # then it reports 0 due
    assert api.get(f"{API}/invoices/{invoice['id']}").json()["amount_due"] == "0.00"


def test_unit_prices_finer_than_the_minor_unit_show_their_own_precision(api, acme) -> None:
    # given lines priced finer than a cent and in KWD
    response = _invoice(api, acme, _line("3", "33.3367", tax_rate="0"), issue=True)
    # when read back
    line = response.json()["lines"][0]
    # then quantity x unit price = amount reads true
    assert (line["quantity"], line["unit_price"], line["amount"]) == ("3.0000", "33.3367", "100.01")
    invoice = Invoice.objects.get()
    assert invoice.snapshot["lines"][0]["unit_price"] == "33.3367"
