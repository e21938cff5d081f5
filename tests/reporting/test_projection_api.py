"""GET /api/reporting/cash-flow-projection and /api/reporting/forecast: roles, input, figures."""

from __future__ import annotations

import datetime as dt
from datetime import date
from decimal import Decimal as D

import pytest
from rest_framework.test import APIClient

from billing.enums import BillingInterval, PaymentMethodType, PriceType
from billing.services.customers import customer_create
from billing.services.invoices import LineInput, invoice_create
from billing.services.payments import payment_record
from billing.services.subscriptions import (
    ItemInput,
    price_create,
    product_create,
    subscription_create,
)
from core.roles import Role

PROJECTION = "/api/reporting/cash-flow-projection"
FORECAST = "/api/reporting/forecast"
NOW = dt.datetime(2026, 9, 1, 12, tzinfo=dt.UTC)
pytestmark = pytest.mark.django_db


@pytest.fixture
def book(make_user, time_machine):
    """On 2026-09-01: 250.00 USD in the bank, a 1,000.00 invoice due 2026-09-10 of a customer
    without history, and a monthly 120.00 subscription started 2026-08-15 (tax exempt)."""
    time_machine.move_to(NOW, tick=False)
    admin = make_user(Role.FINANCE_ADMIN)
    customer = customer_create(
        actor=admin, name="Acme", email="a@x.example", currency="USD", tax_exempt=True
    )
    payment_record(
        actor=admin,
        customer_id=customer.pk,
        amount=D("250.00"),
        currency="USD",
        method=PaymentMethodType.WIRE_TRANSFER,
        received_date=date(2026, 8, 20),
    )
    invoice_create(
        actor=admin,
        customer_id=customer.pk,
        issue=True,
        issue_date=date(2026, 8, 11),
        due_date=date(2026, 9, 10),
        lines=[LineInput(description="x", quantity=D(1), unit_price=D("1000.00"))],
    )
    product = product_create(actor=admin, name="Plan")
    price = price_create(
        actor=admin,
        product_id=product.pk,
        currency="USD",
        type=PriceType.FLAT,
        interval=BillingInterval.MONTH,
        unit_amount=D("120.00"),
    )
    subscription_create(
        actor=admin,
        customer_id=customer.pk,
        items=[ItemInput(price_id=price.pk)],
        start_date=date(2026, 8, 15),
    )
    return customer


def test_auditor_reads_the_weekly_projection(client_for, book) -> None:
    # given the book; the customer has no history and the portfolio none either, so the
    # invoice is expected on its due date 2026-09-10 (week 2)
    client = client_for(Role.AUDITOR)
    # when
    response = client.get(PROJECTION, {"weeks": "4", "currency": "usd"})
    # then four weeks of USD, from the 250.00 in the bank
    assert response.status_code == 200
    body = response.json()
    assert body["as_of"] == "2026-09-01"
    assert body["currencies"] == [
        {"currency": "USD", "opening_cash": "250.0000", "simulations": 1, "bands": "simulation"}
    ]
    assert [w["week"] for w in body["weeks"]] == [1, 2, 3, 4]
    week2 = body["weeks"][1]
    assert (week2["start_date"], week2["end_date"]) == ("2026-09-09", "2026-09-15")
    assert (week2["receipts"], week2["net"], week2["closing_cash"]) == (
        "1000.0000",
        "1000.0000",
        "1250.0000",
    )
    assert week2["p10_closing_cash"] == week2["p90_closing_cash"] == "1250.0000"
    assert body["weeks"][3]["closing_cash"] == "1250.0000"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"weeks": "0"}, "weeks"),
        ({"weeks": "53"}, "weeks"),
        ({"weeks": "abc"}, "weeks"),
        ({"currency": "ZZZ"}, "currency"),
    ],
)
def test_bad_projection_parameters_are_400_naming_the_field(client_for, params, field) -> None:
    # given
    client = client_for(Role.CONTROLLER)
    # when
    response = client.get(PROJECTION, params)
    # then
    assert response.status_code == 400
    assert field in str(response.json())


@pytest.mark.parametrize("months", ["0", "37", "x"])
def test_bad_forecast_months_are_400(client_for, months) -> None:
    response = client_for(Role.AUDITOR).get(FORECAST, {"months": months})
    assert response.status_code == 400
    assert "months" in str(response.json())


def test_auditor_reads_the_forecast(client_for, book) -> None:
    # given the 120.00 monthly subscription, no churn and no usage history
    client = client_for(Role.AUDITOR)
    # when
    response = client.get(FORECAST, {"months": "3"})
    # then three months from October, 120.00 each, the band closed
    assert response.status_code == 200
    months = response.json()["months"]
    assert [(m["month"], m["expected"], m["low"], m["high"]) for m in months] == [
        ("2026-10-01", "120.0000", "120.0000", "120.0000"),
        ("2026-11-01", "120.0000", "120.0000", "120.0000"),
        ("2026-12-01", "120.0000", "120.0000", "120.0000"),
    ]


@pytest.mark.parametrize("url", [PROJECTION, FORECAST])
@pytest.mark.parametrize(
    ("role", "expected"),
    [
        (Role.AUDITOR, 200),
        (Role.CONTROLLER, 200),
        (Role.FINANCE_ADMIN, 200),
        (Role.AP_CLERK, 403),
        (Role.AR_CLERK, 403),
        (Role.APPROVER, 403),
    ],
)
def test_roles(client_for, url, role, expected) -> None:
    assert client_for(role).get(url).status_code == expected


@pytest.mark.parametrize("url", [PROJECTION, FORECAST])
def test_integration_token_reads_and_anonymous_is_refused(
    client, integration_client, make_user, url
) -> None:
    assert integration_client.get(url).status_code == 200
    assert client.get(url).status_code in (401, 403)
    unverified = APIClient()
    unverified.force_login(make_user(Role.CONTROLLER, mfa=False))
    assert unverified.get(url).status_code == 403


def test_the_schema_describes_both_endpoints(client) -> None:
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    projection = schema["paths"][PROJECTION]["get"]
    forecast = schema["paths"][FORECAST]["get"]
    assert {p["name"] for p in projection["parameters"]} == {"weeks", "currency"}
    assert {p["name"] for p in forecast["parameters"]} == {"months", "currency"}
    assert "200" in projection["responses"]
    assert "200" in forecast["responses"]
