"""API base: error shape, access by role and second factor, schema and docs, health."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from core.api.permissions import PUBLIC
from core.ledger.models import JournalEntry
from core.roles import Role
from tests.conftest import token_client, token_for

pytestmark = pytest.mark.django_db
ENTRIES = "/api/ledger/journal-entries"


def entry_body(**overrides) -> dict:
    data = {
        "entry_date": "2026-04-15",
        "description": "Accrual",
        "lines": [
            {"account": "6000", "currency": "USD", "debit": "25.00"},
            {"account": "1900", "currency": "USD", "credit": "25.00"},
        ],
    }
    data.update(overrides)
    return data


def api_views():
    """Every view under /api/ from the URL configuration, with its route."""

    def walk(patterns, prefix=""):
        for p in patterns:
            if isinstance(p, URLResolver):
                yield from walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern):
                yield prefix + str(p.pattern), p.callback

    return [
        (route, cb) for route, cb in walk(get_resolver().url_patterns) if route.startswith("api/")
    ]


def test_every_api_route_declares_its_permissions() -> None:
    undeclared = [
        route
        for route, callback in api_views()
        if getattr(getattr(callback, "view_class", None), "required_permissions", None) is None
    ]
    assert undeclared == []
    assert len(api_views()) >= 7


def test_validation_errors_have_one_shape(integration_client) -> None:
    response = integration_client.post(
        ENTRIES, entry_body(entry_date="15/04/2026", lines=[]), format="json"
    )
    assert response.status_code == 400
    data = response.json()
    assert data["code"] == "invalid"
    assert data["message"] == "The request has invalid fields."
    assert set(data["errors"]) == {"entry_date", "lines"}


def test_domain_errors_carry_their_code(integration_client) -> None:
    response = integration_client.post(
        ENTRIES,
        entry_body(
            lines=[
                {"account": "6000", "currency": "USD", "debit": "25.00"},
                {"account": "1900", "currency": "USD", "credit": "24.00"},
            ]
        ),
        format="json",
    )
    assert response.status_code == 400
    assert response.json() == {
        "code": "unbalanced_entry",
        "message": "The entry does not balance in USD: debits 25.00 and credits 24.00 differ by 1.00.",
        "errors": {},
        "details": {"currency": "USD"},
    }
    assert JournalEntry.objects.count() == 0


@pytest.mark.parametrize(
    "amount",
    ["1e3", "NaN", "Infinity", 25.0, 25, "0.00001", "1234567890123456789012345", "-5.00", ""],
)
def test_B2_bad_money_inputs_get_a_field_error_and_write_nothing(
    integration_client, amount
) -> None:
    lines = [
        {"account": "6000", "currency": "USD", "debit": amount},
        {"account": "1900", "currency": "USD", "credit": "25.00"},
    ]
    response = integration_client.post(ENTRIES, entry_body(lines=lines), format="json")
    assert response.status_code == 400
    assert response.json()["errors"]["lines"]["0"]["debit"]
    assert JournalEntry.objects.count() == 0


def test_unknown_api_path_is_a_json_404(integration_client) -> None:
    response = integration_client.get("/api/nothing-here")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_missing_object_is_a_json_404(integration_client) -> None:
    response = integration_client.get(f"{ENTRIES}/999999")
    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "message": "Not found.", "errors": {}}


def test_A3_staff_session_without_second_factor_is_refused(make_user) -> None:
    # given a finance admin signed in with a password only
    user = make_user(Role.FINANCE_ADMIN)
    client = APIClient()
    client.force_login(user)
    # when / then every staff API endpoint refuses
    for url in ("/api/ledger/accounts", ENTRIES, "/api/ledger/trial-balance"):
        response = client.get(url)
        assert response.status_code == 403, url
        assert (
            response.json()["message"]
            == "Authentication with a verified second factor is required."
        )


def test_anonymous_is_refused(client) -> None:
    assert client.get("/api/ledger/accounts").status_code in (401, 403)
    assert client.post(ENTRIES, entry_body(), content_type="application/json").status_code in (
        401,
        403,
    )


# What each role may do through the ledger API: (method, url) -> roles allowed.
MATRIX = {
    ("GET", "/api/ledger/accounts"): set(Role),
    ("GET", ENTRIES): {Role.FINANCE_ADMIN, Role.CONTROLLER, Role.AUDITOR, Role.INTEGRATION},
    ("POST", ENTRIES): {Role.FINANCE_ADMIN, Role.CONTROLLER, Role.INTEGRATION},
    ("GET", "/api/ledger/trial-balance"): {
        Role.FINANCE_ADMIN,
        Role.CONTROLLER,
        Role.AUDITOR,
        Role.INTEGRATION,
    },
}


@pytest.mark.parametrize("role", list(Role))
def test_role_matrix_for_the_ledger_api(role, client_for, make_user) -> None:
    if role == Role.INTEGRATION:
        client = token_client(token_for(make_user(role, mfa=False)))
    else:
        client = client_for(role)
    for (method, url), allowed in MATRIX.items():
        if method == "GET":
            response = client.get(url)
            expected = 200
        else:
            response = client.post(url, entry_body(), format="json")
            expected = 201
        assert response.status_code == (expected if role in allowed else 403), (role, method, url)


def test_schema_and_offline_docs_are_served(client) -> None:
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/ledger/journal-entries" in paths
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    # the Swagger UI assets come from this server (drf-spectacular-sidecar), not a CDN
    assert "cdn" not in html.lower()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in html


def test_healthz_reports_database_and_broker(client, settings) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "eager"}


def test_healthz_reports_an_unreachable_broker(client, settings) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["broker"].startswith("error")


def test_healthz_with_the_real_broker(client, settings) -> None:
    import os

    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15")
    assert client.get("/healthz").json()["broker"] == "ok"


def test_public_views_are_only_schema_and_docs() -> None:
    public = [
        r
        for r, cb in api_views()
        if getattr(getattr(cb, "view_class", None), "required_permissions", None) == PUBLIC
    ]
    # webhooks authenticate by their signature, checked in the view
    webhooks = [r for r in public if r.startswith("api/billing/webhooks/")]
    assert "api/billing/webhooks/stripe" in webhooks
    assert sorted(set(public) - set(webhooks)) == ["api/docs/", "api/schema/"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        # Posted money is whole minor units, as a payment's is.
        ({"debit": "0.001"}, "lines[0].debit"),
        ({"currency": "JPY", "debit": "10.5"}, "lines[0].debit"),
    ],
)
def test_manual_lines_finer_than_the_minor_unit_are_refused(
    integration_client, change, field
) -> None:
    # given a manual entry with one line finer than its currency's minor unit
    other = {"account": "1900", "currency": change.get("currency", "USD")}
    other["credit"] = change["debit"]
    lines = [{"account": "6000", "currency": "USD", **change}, other]
    # when posted
    response = integration_client.post(ENTRIES, entry_body(lines=lines), format="json")
    # then refused naming the line, nothing posted
    assert response.status_code == 400, response.json()
    assert field in response.json()["errors"]
    assert JournalEntry.objects.count() == 0


@pytest.mark.parametrize("entry_date", ["0001-01-01", "9999-12-31", "1999-12-31"])
def test_manual_entry_dates_stay_inside_the_books_window(integration_client, entry_date) -> None:
    # given a manual entry dated outside the window / when posted
    response = integration_client.post(ENTRIES, entry_body(entry_date=entry_date), format="json")
    # then a field error, nothing posted
    assert response.status_code == 400
    assert "entry_date" in response.json()["errors"]
    assert JournalEntry.objects.count() == 0


def test_a_functional_value_too_large_for_the_ledger_is_refused(db) -> None:
    # given a rate that would take a large EUR amount beyond the ledger's columns
    from core.fx import fx_rate_set
    from core.ledger.exceptions import InvalidLine
    from core.ledger.models import Account
    from core.ledger.services import LineSpec, journal_post

    fx_rate_set(base="EUR", quote="USD", rate=Decimal("2000"), rate_date=date(2026, 4, 15))
    expense, suspense = Account.objects.get(code="6000"), Account.objects.get(code="1900")
    amount = Decimal("999999999999")
    # when posted / then refused with a code, nothing posted (no numeric overflow)
    with pytest.raises(InvalidLine) as refused:
        journal_post(
            lines=[
                LineSpec(expense, "EUR", debit=amount),
                LineSpec(suspense, "EUR", credit=amount),
            ],
            entry_date=date(2026, 4, 15),
        )
    assert refused.value.code == "amount_too_large"
    assert JournalEntry.objects.count() == 0
