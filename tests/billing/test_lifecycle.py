"""The whole revenue cycle through the API, and concurrent transitions (RELIABILITY.md L5)."""

from __future__ import annotations

import threading
from datetime import date
from decimal import Decimal

import pytest
from django.core import mail
from django.db import connection

from billing.checks import ar_subledger_check
from billing.exceptions import InvalidTransition
from billing.models import Invoice
from billing.services.invoices import LineInput, invoice_create, invoice_void
from core.ledger.models import JournalEntry
from core.ledger.selectors import trial_balance

D = Decimal


@pytest.mark.django_db
def test_customer_to_paid_invoice_through_the_api(
    integration_client, django_capture_on_commit_callbacks
) -> None:
    api = integration_client
    # a customer and a monthly plan with a metered part
    customer = api.post(
        "/api/billing/customers",
        {
            "name": "Globex",
            "email": "billing@globex.example",
            "currency": "USD",
            "tax_jurisdiction": "",
        },
        format="json",
    ).json()
    from billing.services.subscriptions import price_create, product_create

    product = product_create(actor=None, name="Team plan")
    plan = price_create(
        actor=None,
        product_id=product.pk,
        currency="USD",
        type="per_unit",
        interval="month",
        unit_amount=D("25.00"),
        nickname="Team",
    )
    calls = price_create(
        actor=None,
        product_id=product.pk,
        currency="USD",
        type="per_unit",
        interval="month",
        unit_amount=D("0.01"),
        metric="api_calls",
        aggregation="sum",
        nickname="API calls",
    )
    sub = api.post(
        "/api/billing/subscriptions",
        {
            "customer": customer["id"],
            "start_date": "2026-03-01",
            "items": [{"price": plan.pk, "quantity": "4"}, {"price": calls.pk}],
        },
        format="json",
    )
    assert sub.status_code == 201, sub.json()
    metered_item = next(i for i in sub.json()["items"] if i["price"] == calls.pk)
    usage = api.post(
        "/api/billing/usage-events",
        {
            "events": [
                {
                    "subscription_item": metered_item["id"],
                    "metric": "api_calls",
                    "quantity": "1200",
                    "timestamp": "2026-03-10T09:00:00Z",
                    "idempotency_key": "u-1",
                },
                {
                    "subscription_item": metered_item["id"],
                    "metric": "api_calls",
                    "quantity": "800",
                    "timestamp": "2026-03-20T09:00:00Z",
                    "idempotency_key": "u-2",
                },
            ]
        },
        format="json",
    )
    assert usage.json() == {"recorded": 2, "duplicates": 0}
    # the billing run issues March's invoice; PDF and email follow after commit
    from billing.services.billing_run import billing_run

    with django_capture_on_commit_callbacks(execute=True):
        result = billing_run(as_of=date(2026, 4, 1))
    invoice = api.get(f"/api/billing/invoices/{result.invoices[0]}").json()
    # 4 x 25.00 + 2000 x 0.01 = 120.00, tax 8.75 % = 10.50
    assert (invoice["subtotal"], invoice["tax"], invoice["total"], invoice["status"]) == (
        "120.00",
        "10.50",
        "130.50",
        "open",
    )
    assert invoice["pdf_available"] is True
    pdf = api.get(f"/api/billing/invoices/{invoice['id']}/pdf")
    assert pdf["Content-Type"] == "application/pdf"
    assert len(mail.outbox) == 1
    assert mail.outbox[0].attachments[0][0] == f"{invoice['number']}.pdf"
    # partial, then full payment
    for amount in ("30.50", "100.00"):
        paid = api.post(
            "/api/billing/payments",
            {"customer": customer["id"], "amount": amount, "currency": "USD", "method": "ach"},
            format="json",
        )
        assert paid.status_code == 201
        assert ar_subledger_check() == []
    final = api.get(f"/api/billing/invoices/{invoice['id']}").json()
    assert (final["status"], final["amount_due"]) == ("paid", "0.00")
    assert trial_balance().is_balanced


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_L5_two_concurrent_voids_change_the_state_once(make_user) -> None:
    from billing.services.customers import customer_create

    admin = make_user("finance_admin")
    customer = customer_create(actor=admin, name="C", email="c@x.example", currency="USD")
    invoice = invoice_create(
        actor=admin,
        customer_id=customer.pk,
        issue=True,
        lines=[LineInput(description="x", quantity=D(1), unit_price=D("10.00"))],
    )
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def void() -> None:
        barrier.wait()
        try:
            invoice_void(actor=admin, invoice_id=invoice.pk, reason="twice")
            outcomes.append("voided")
        except InvalidTransition:
            outcomes.append("409")
        finally:
            connection.close()

    threads = [threading.Thread(target=void) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["409", "voided"]
    assert Invoice.objects.get().status == "void"
    assert JournalEntry.objects.filter(reversal_of__isnull=False).count() == 1
    assert trial_balance().is_balanced
