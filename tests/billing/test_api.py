"""The billing API as integrations use it."""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing.models import Customer, Invoice, Payment
from core.ledger.enums import AccountRole
from core.ledger.models import Account, JournalEntry
from core.ledger.selectors import account_balances, trial_balance

pytestmark = pytest.mark.django_db
D = Decimal


def create_customer(client, **extra) -> dict:
    response = client.post(
        "/api/billing/customers",
        {"name": "Acme Corp", "email": "ap@acme.example", "currency": "USD", **extra},
        format="json",
    )
    assert response.status_code == 201, response.json()
    return response.json()


def test_invoice_lifecycle_through_the_api(integration_client) -> None:
    # given a customer
    customer = create_customer(integration_client, country="US", tax_id="04-2103594")
    assert customer["tax_id"] == "042103594"
    # when an invoice is created and issued at once
    response = integration_client.post(
        "/api/billing/invoices",
        {
            "customer": customer["id"],
            "currency": "USD",
            "issue_date": "2026-03-02",
            "lines": [
                {"description": "Pro plan, March", "quantity": "1", "unit_price": "200.00"},
                {
                    "description": "Extra seats",
                    "quantity": "3",
                    "unit_price": "15.00",
                    "tax_rate": "0",
                },
            ],
            "issue": True,
        },
        format="json",
    )
    # then
    assert response.status_code == 201, response.json()
    invoice = response.json()
    assert {
        k: invoice[k]
        for k in (
            "number",
            "status",
            "currency",
            "subtotal",
            "tax",
            "total",
            "amount_paid",
            "amount_due",
            "due_date",
        )
    } == {
        "number": "INV-2026-000001",
        "status": "open",
        "currency": "USD",
        "subtotal": "245.00",
        "tax": "17.50",
        "total": "262.50",
        "amount_paid": "0.00",
        "amount_due": "262.50",
        "due_date": "2026-04-01",
    }
    # a partial payment, then the rest
    partial = integration_client.post(
        "/api/billing/payments",
        {
            "customer": customer["id"],
            "amount": "100.00",
            "currency": "USD",
            "method": "ach",
            "allocations": [{"invoice": invoice["id"], "amount": "100.00"}],
        },
        format="json",
    )
    assert partial.status_code == 201, partial.json()
    rest = integration_client.post(
        "/api/billing/payments",
        {
            "customer": customer["id"],
            "amount": "162.50",
            "currency": "USD",
            "method": "wire_transfer",
        },
        format="json",
    )
    assert rest.status_code == 201, rest.json()
    assert rest.json()["allocations"] == [
        {"invoice": invoice["id"], "number": "INV-2026-000001", "amount": "162.50"}
    ]
    final = integration_client.get(f"/api/billing/invoices/{invoice['id']}").json()
    assert (final["status"], final["amount_due"]) == ("paid", "0.00")
    # the books: balanced, AR control account equal to the open items (none)
    ar = Account.objects.get(role=AccountRole.ACCOUNTS_RECEIVABLE)
    assert account_balances(account=ar)["USD"].balance == 0
    assert trial_balance().is_balanced


def test_put_on_an_issued_invoice_is_409_with_the_reason(integration_client) -> None:
    customer = create_customer(integration_client)
    invoice = integration_client.post(
        "/api/billing/invoices",
        {
            "customer": customer["id"],
            "lines": [{"description": "x", "quantity": "1", "unit_price": "10.00"}],
            "issue": True,
        },
        format="json",
    ).json()
    response = integration_client.put(
        f"/api/billing/invoices/{invoice['id']}",
        {"lines": [{"description": "y", "quantity": "1", "unit_price": "1.00"}]},
        format="json",
    )
    assert response.status_code == 409
    assert response.json()["code"] == "invoice_not_editable"
    assert "credit note" in response.json()["message"]
    assert Invoice.objects.get().total.amount == D("10.88")


def test_B9_mass_assignment_changes_nothing(integration_client) -> None:
    customer = create_customer(integration_client)
    draft = integration_client.post(
        "/api/billing/invoices",
        {
            "customer": customer["id"],
            "lines": [{"description": "x", "quantity": "1", "unit_price": "10.00"}],
        },
        format="json",
    ).json()
    response = integration_client.put(
        f"/api/billing/invoices/{draft['id']}",
        {
            "status": "paid",
            "amount_paid": "10.00",
            "number": "INV-1999-000001",
            "lines": [{"description": "x", "quantity": "1", "unit_price": "10.00"}],
        },
        format="json",
    )
    assert response.status_code == 200
    invoice = Invoice.objects.get()
    assert (invoice.status, invoice.amount_paid.amount, invoice.number) == ("draft", D(0), None)
    patched = integration_client.patch(
        f"/api/billing/customers/{customer['id']}", {"credit_balance": "1000.00"}, format="json"
    )
    assert patched.status_code == 200
    assert Customer.objects.get().credit_balance.amount == 0


def test_allocation_above_due_is_409_and_nothing_recorded(integration_client) -> None:
    customer = create_customer(integration_client)
    invoice = integration_client.post(
        "/api/billing/invoices",
        {
            "customer": customer["id"],
            "lines": [
                {"description": "x", "quantity": "1", "unit_price": "100.00", "tax_rate": "0"}
            ],
            "issue": True,
        },
        format="json",
    ).json()
    entries = JournalEntry.objects.count()
    response = integration_client.post(
        "/api/billing/payments",
        {
            "customer": customer["id"],
            "amount": "150.00",
            "currency": "USD",
            "method": "ach",
            "allocations": [{"invoice": invoice["id"], "amount": "150.00"}],
        },
        format="json",
    )
    assert response.status_code == 409
    assert response.json()["code"] == "over_allocation"
    assert Payment.objects.count() == 0
    assert JournalEntry.objects.count() == entries


@pytest.mark.parametrize(
    ("field", "value"),
    [("currency", "ABC"), ("email", "not-an-email"), ("payment_terms", -1)],
)
def test_bad_customer_input_is_a_field_error(integration_client, field, value) -> None:
    body = {"name": "X", "email": "x@x.example", "currency": "USD", field: value}
    response = integration_client.post("/api/billing/customers", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert Customer.objects.count() == 0


def test_invalid_tax_id_is_refused(integration_client) -> None:
    response = integration_client.post(
        "/api/billing/customers",
        {
            "name": "GmbH",
            "email": "x@x.example",
            "currency": "EUR",
            "country": "DE",
            "tax_id": "DE123",
        },
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_tax_id"
    assert Customer.objects.count() == 0


def test_unknown_customer_on_invoice_is_a_field_error(integration_client) -> None:
    response = integration_client.post(
        "/api/billing/invoices",
        {"customer": 999, "lines": [{"description": "x", "quantity": "1", "unit_price": "1.00"}]},
        format="json",
    )
    assert response.status_code == 400
    assert "customer" in response.json()["errors"]


def test_invoice_list_filters(integration_client) -> None:
    customer = create_customer(integration_client)
    for issue in (True, False):
        integration_client.post(
            "/api/billing/invoices",
            {
                "customer": customer["id"],
                "issue": issue,
                "lines": [{"description": "x", "quantity": "1", "unit_price": "1.00"}],
            },
            format="json",
        )
    listed = integration_client.get("/api/billing/invoices?status=open").json()
    assert listed["count"] == 1
    assert listed["results"][0]["status"] == "open"
    assert integration_client.get("/api/billing/invoices?status=bogus").status_code == 400
