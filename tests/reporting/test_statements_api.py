"""The financial statements API (/api/reporting/profit-and-loss, balance-sheet,
cash-flow-statement): figures of the book in tests.reporting.test_statements, roles, bad input."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from core.roles import Role
from tests.reporting.test_statements import Book, build_book

pytestmark = pytest.mark.django_db

PNL = "/api/reporting/profit-and-loss"
SHEET = "/api/reporting/balance-sheet"
FLOW = "/api/reporting/cash-flow-statement"
H1 = {"from": "2026-01-01", "to": "2026-06-30"}


@pytest.fixture
def book(make_user: Callable[..., Any]) -> Book:
    return build_book(make_user)


def _lines(section: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {line["code"] or line["name"]: line for line in section["lines"]}


def test_profit_and_loss_figures_as_decimal_strings(client_for, book) -> None:
    # given the book
    client = client_for(Role.AUDITOR)
    # when the P&L of 2026 H1 is compared with 2025
    response = client.get(PNL, {**H1, "compare_from": "2025-01-01", "compare_to": "2025-12-31"})
    # then
    assert response.status_code == 200
    body = response.json()
    assert (body["from"], body["to"], body["functional_currency"]) == (
        "2026-01-01",
        "2026-06-30",
        "USD",
    )
    revenue = _lines(body["income"])["4000"]
    assert revenue["current"] == {
        "amounts": [
            {"currency": "EUR", "amount": "100.0000"},
            {"currency": "USD", "amount": "2000.0000"},
        ],
        "functional": "2110.0000",
    }
    assert revenue["comparison"]["functional"] == "1000.0000"
    assert body["net_income"]["functional"] == "1500.0000"
    assert body["comparison_net_income"]["functional"] == "700.0000"


def test_balance_sheet_balances_through_the_api(client_for, book) -> None:
    # given the book
    client = client_for(Role.CONTROLLER)
    # when
    response = client.get(SHEET, {"as_of": "2026-06-30"})
    # then
    assert response.status_code == 200
    body = response.json()
    assert body["balanced"] is True
    assert body["fiscal_year_start"] == "2026-01-01"
    assert body["assets"]["total"]["functional"] == "2820.0000"
    assert body["liabilities_and_equity"]["functional"] == "2820.0000"
    equity = _lines(body["equity"])
    assert equity["Retained earnings"]["current"]["functional"] == "700.0000"
    assert equity["Current-year result"]["current"]["functional"] == "1500.0000"
    assert body["compare_as_of"] is None
    assert equity["3000"]["comparison"] is None


def test_cash_flow_statement_through_the_api(client_for, book) -> None:
    # given the book
    client = client_for(Role.FINANCE_ADMIN)
    # when
    response = client.get(FLOW, H1)
    # then
    assert response.status_code == 200
    body = response.json()
    assert [a["code"] for a in body["cash_accounts"]] == ["1000", "1010"]
    assert body["cash"] == [
        {"currency": "EUR", "opening": "0.0000", "net_change": "100.0000", "closing": "100.0000"},
        {"currency": "USD", "opening": "0.0000", "net_change": "1700.0000", "closing": "1700.0000"},
    ]
    assert [(line["kind"], line["amounts"]) for line in body["lines"]] == [
        (
            "customers",
            [
                {"currency": "EUR", "amount": "100.0000"},
                {"currency": "USD", "amount": "2200.0000"},
            ],
        ),
        ("vendors", [{"currency": "USD", "amount": "-500.0000"}]),
    ]


@pytest.mark.parametrize(
    ("url", "params", "field"),
    [
        (PNL, {"from": "2026-02-01", "to": "2026-01-01"}, "from"),
        (PNL, {"to": "2026-01-01"}, "from"),
        (PNL, {"from": "2026-01-01"}, "to"),
        (PNL, {"from": "2026-13-01", "to": "2026-12-31"}, "from"),
        (PNL, {"from": "2000-01-01", "to": "2026-01-01"}, "to"),
        (PNL, {**H1, "compare_from": "2025-01-01"}, "compare_to"),
        (PNL, {**H1, "compare_from": "2025-01-01", "compare_to": "x"}, "compare_to"),
        (SHEET, {}, "as_of"),
        (SHEET, {"as_of": "yesterday"}, "as_of"),
        (SHEET, {"as_of": "2026-01-01", "compare_as_of": "1990-01-01"}, "compare_as_of"),
        (FLOW, {"from": "2026-02-01", "to": "2026-01-01"}, "from"),
        (FLOW, {"from": "1990-01-01", "to": "2026-01-01"}, "to"),
        (FLOW, {"from": "2026-01-01", "to": "99999-01-01"}, "to"),
    ],
)
def test_bad_dates_get_400_naming_the_field(client_for, url, params, field) -> None:
    # given a controller
    client = client_for(Role.CONTROLLER)
    # when a statement is asked for with a bad, missing or too long period
    response = client.get(url, params)
    # then 400 with the message under the parameter
    assert response.status_code == 400
    assert field in response.json()["errors"]


@pytest.mark.parametrize("url", [PNL, SHEET, FLOW])
@pytest.mark.parametrize(
    ("role", "status"),
    [
        (Role.AUDITOR, 200),
        (Role.CONTROLLER, 200),
        (Role.FINANCE_ADMIN, 200),
        (Role.AR_CLERK, 403),
        (Role.AP_CLERK, 403),
        (Role.APPROVER, 403),
    ],
)
def test_roles(client_for, url, role, status) -> None:
    # given a person in the role
    client = client_for(role)
    # when
    response = client.get(url, {**H1, "as_of": "2026-06-30"})
    # then only those who may view financial reports see the statements
    assert response.status_code == status


@pytest.mark.parametrize("url", [PNL, SHEET, FLOW])
def test_integration_may_read_and_anonymous_may_not(integration_client, url) -> None:
    # given / when
    params = {**H1, "as_of": "2026-06-30"}
    allowed = integration_client.get(url, params)
    anonymous = APIClient().get(url, params)
    # then
    assert allowed.status_code == 200
    assert anonymous.status_code in (401, 403)


@pytest.mark.parametrize("url", [PNL, SHEET, FLOW])
def test_staff_without_a_second_factor_is_refused(make_user, url) -> None:
    # given a controller signed in without a verified device
    client = APIClient()
    client.force_login(make_user(Role.CONTROLLER, mfa=False))
    # when
    response = client.get(url, {**H1, "as_of": "2026-06-30"})
    # then
    assert response.status_code in (401, 403)
