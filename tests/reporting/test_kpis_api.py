"""The KPI API: snapshot history (GET /api/reporting/kpis) and live figures
(GET /api/reporting/kpis/current), their input checks, roles and schema."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from billing.services.customers import customer_create
from billing.services.invoices import LineInput, invoice_create
from core.roles import Role
from reporting.kpis import KPIS, kpi_snapshot_take
from reporting.models import KpiSnapshot

HISTORY = "/api/reporting/kpis"
CURRENT = "/api/reporting/kpis/current"
pytestmark = pytest.mark.django_db


@pytest.fixture
def invoiced(make_user):
    """600.00 USD invoiced on June 29th 2026 and 300.00 today."""
    admin = make_user(Role.FINANCE_ADMIN)
    acme = customer_create(actor=admin, name="Acme", email="a@x.example", currency="USD")
    for amount, issued in (("600.00", date(2026, 6, 29)), ("300.00", timezone.localdate())):
        invoice_create(
            actor=admin,
            customer_id=acme.pk,
            issue=True,
            issue_date=issued,
            due_date=issued,
            lines=[LineInput(description="x", quantity=D(1), unit_price=D(amount), tax_rate=D(0))],
        )


@pytest.fixture
def history(invoiced):
    for day in (date(2026, 6, 28), date(2026, 6, 29), date(2026, 6, 30)):
        kpi_snapshot_take(as_of=day, codes=["ar", "dso_30", "approvals_waiting"])


def test_history_lists_stored_rows_of_the_period_and_chosen_kpis(client_for, history) -> None:
    # given snapshots of June 28th to 30th
    client = client_for(Role.AUDITOR)
    # when June 29th to 30th is asked for AR and DSO (one repeated, one comma list)
    response = client.get(HISTORY, {"from": "2026-06-29", "to": "2026-06-30", "kpi": ["ar,dso_30"]})
    repeated = client.get(HISTORY + "?from=2026-06-29&to=2026-06-30&kpi=ar&kpi=dso_30")
    # then the rows of those days, oldest first, with label and unit
    assert response.status_code == 200
    rows = [
        (r["date"], r["kpi"], r["currency"], r["value"], r["unit"])
        for r in response.json()["results"]
    ]
    assert rows == [
        ("2026-06-29", "ar", "USD", "600.0000", "money"),
        ("2026-06-29", "dso_30", "USD", "30.0000", "days"),
        ("2026-06-30", "ar", "USD", "600.0000", "money"),
        ("2026-06-30", "dso_30", "USD", "30.0000", "days"),
    ]
    assert response.json()["results"][0]["label"] == "Accounts receivable"
    assert repeated.json()["results"] == response.json()["results"]


def test_history_without_a_kpi_gives_every_stored_one(client_for, history) -> None:
    # when
    response = client_for(Role.CONTROLLER).get(HISTORY, {"from": "2026-06-28", "to": "2026-06-28"})
    # then June 28th: no sale yet, so AR and DSO are absent; the approvals queue is 0
    assert [(r["kpi"], r["value"]) for r in response.json()["results"]] == [
        ("approvals_waiting", "0.0000")
    ]


@pytest.mark.parametrize(
    ("params", "field", "words"),
    [
        ({"kpi": "ar,nonsense"}, "kpi", "'nonsense'"),
        ({"from": "2026-07-01", "to": "2026-06-30"}, "from", "must not be after"),
        ({"from": "2000-01-01", "to": "2026-06-30"}, "to", "longer than 20 years"),
        ({"from": "30/06/2026"}, "from", "format"),
    ],
)
def test_bad_input_is_a_400_naming_the_parameter(client_for, params, field, words) -> None:
    # when
    response = client_for(Role.AUDITOR).get(HISTORY, params)
    # then
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert words in " ".join(body["errors"][field])


def test_an_unknown_kpi_is_refused_by_the_live_figures_too(client_for) -> None:
    response = client_for(Role.AUDITOR).get(CURRENT, {"kpi": "ebitda"})
    assert response.status_code == 400
    assert "'ebitda'" in response.json()["errors"]["kpi"][0]


def test_current_gives_live_figures_with_label_unit_and_how(client_for, invoiced) -> None:
    # given 900.00 receivable today
    # when
    response = client_for(Role.AUDITOR).get(CURRENT, {"kpi": "ar,approvals_waiting"})
    # then
    assert response.status_code == 200
    body = response.json()
    assert body["as_of"] == timezone.localdate().isoformat()
    assert body["kpis"] == [
        {
            "code": "ar",
            "label": "Accounts receivable",
            "unit": "money",
            "how": KPIS["ar"].how,
            "values": [{"currency": "USD", "value": "900.0000"}],
        },
        {
            "code": "approvals_waiting",
            "label": "Approvals waiting",
            "unit": "count",
            "how": KPIS["approvals_waiting"].how,
            "values": [{"currency": "", "value": "0.0000"}],
        },
    ]


def test_current_without_a_kpi_lists_the_whole_registry(client_for) -> None:
    response = client_for(Role.FINANCE_ADMIN).get(CURRENT)
    assert [k["code"] for k in response.json()["kpis"]] == list(KPIS)
    # nothing is stored by a read
    assert not KpiSnapshot.objects.exists()


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        (Role.AUDITOR, 200),
        (Role.CONTROLLER, 200),
        (Role.FINANCE_ADMIN, 200),
        (Role.AR_CLERK, 403),
        (Role.AP_CLERK, 403),
        (Role.APPROVER, 403),
    ],
)
def test_roles(client_for, role, expected) -> None:
    client = client_for(role)
    assert client.get(HISTORY).status_code == expected
    assert client.get(CURRENT, {"kpi": "ar"}).status_code == expected


def test_integration_token_reads_and_anonymous_or_unverified_are_refused(
    client, integration_client, make_user
) -> None:
    assert integration_client.get(HISTORY).status_code == 200
    assert integration_client.get(CURRENT, {"kpi": "cash"}).status_code == 200
    assert client.get(HISTORY).status_code in (401, 403)
    assert client.get(CURRENT).status_code in (401, 403)
    unverified = APIClient()
    unverified.force_login(make_user(Role.AUDITOR, mfa=False))
    assert unverified.get(HISTORY).status_code == 403


def test_the_schema_describes_both_endpoints(client) -> None:
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    history = schema["paths"][HISTORY]["get"]
    assert {p["name"] for p in history["parameters"]} >= {"from", "to", "kpi", "page"}
    assert {p["name"] for p in schema["paths"][CURRENT]["get"]["parameters"]} == {"kpi"}


@pytest.mark.parametrize(
    "params",
    [
        {"from": "9999-12-01", "to": "9999-12-31"},
        {"to": "0001-01-01"},
        {"from": "2000-01-01", "to": "2019-12-31"},
    ],
)
def test_periods_at_the_edges_of_the_calendar_and_of_the_limit_are_answered(
    client_for, params
) -> None:
    response = client_for(Role.AUDITOR).get(HISTORY, params)
    assert response.status_code == 200
    assert response.json()["results"] == []
