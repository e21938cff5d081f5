from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest

from billing.models import Customer, Invoice
from billing.services.customers import customer_create
from billing.services.invoices import LineInput, invoice_create


@pytest.fixture
def clerk(make_user):
    return make_user("ar_clerk")


@pytest.fixture
def customer(clerk) -> Customer:
    return customer_create(actor=clerk, name="Acme Corp", email="ap@acme.example", currency="USD")


@pytest.fixture
def make_invoice(clerk, customer, django_capture_on_commit_callbacks) -> Callable[..., Invoice]:
    def make(*amounts: str, issue: bool = True, on: Customer | None = None, **kwargs) -> Invoice:
        lines = [
            LineInput(
                description=f"Item {n}",
                quantity=Decimal(1),
                unit_price=Decimal(a),
                tax_rate=Decimal(0),
            )
            for n, a in enumerate(amounts or ("100.00",), start=1)
        ]
        with django_capture_on_commit_callbacks(execute=False):
            return invoice_create(
                actor=clerk, customer_id=(on or customer).pk, lines=lines, issue=issue, **kwargs
            )

    return make
