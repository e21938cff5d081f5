"""API tokens carry scopes (issue 15 hole 5): an integration token reaches only the APIs its
scopes name, read or write, whatever its role allows; people's sessions are unaffected."""

from __future__ import annotations

import importlib
from io import StringIO

import pytest
from django.apps import apps
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from knox.models import AuthToken

from core.api.permissions import PUBLIC
from core.api.scopes import API_AREAS, scope_parse, view_area
from core.models import ApiTokenScope
from core.roles import Role
from tests.conftest import token_client
from tests.core.test_api import api_views, entry_body

pytestmark = pytest.mark.django_db

ENTRIES = "/api/ledger/journal-entries"
VENDORS = "/api/payables/vendors"
CUSTOMERS = "/api/billing/customers"


def create_token(*scopes: str, username: str = "erp", role: str = Role.INTEGRATION) -> str:
    out = StringIO()
    args = ["--username", username, "--role", role]
    for scope in scopes:
        args += ["--scope", scope]
    call_command("create_api_token", *args, stdout=out)
    return out.getvalue().splitlines()[-1]


def test_a_billing_token_does_not_read_payables() -> None:
    # given the probe's complaint: an integration token reads all of payables
    client = token_client(create_token("billing:write"))
    # then a billing-scoped token reads and writes billing only
    assert client.get(CUSTOMERS).status_code == 200
    refused = client.get(VENDORS)
    assert refused.status_code == 403
    assert "payables:read" in refused.json()["message"]
    assert client.get("/api/ledger/accounts").status_code == 403


def test_a_read_scope_does_not_write() -> None:
    client = token_client(create_token("ledger:read"))
    assert client.get("/api/ledger/accounts").status_code == 200
    refused = client.post(ENTRIES, entry_body(), format="json")
    assert refused.status_code == 403
    assert "ledger:write" in refused.json()["message"]
    assert not ApiTokenScope.objects.filter(scopes__contains=["ledger:write"]).exists()


def test_a_write_scope_reads_too_and_several_scopes_add_up() -> None:
    client = token_client(create_token("ledger:write", "payables:read"))
    assert client.post(ENTRIES, entry_body(), format="json").status_code == 201
    assert client.get("/api/ledger/accounts").status_code == 200
    assert client.get(VENDORS).status_code == 200
    assert client.get(CUSTOMERS).status_code == 403


def test_a_scope_never_grants_what_the_role_may_not_do() -> None:
    # an auditor's token with every scope still cannot post
    client = token_client(create_token("*:write", username="reports", role=Role.AUDITOR))
    assert client.get("/api/ledger/accounts").status_code == 200
    assert client.post(ENTRIES, entry_body(), format="json").status_code == 403


def test_a_token_without_scopes_calls_nothing(make_user) -> None:
    # a token made around the service (no scope row) fails safe
    user = make_user(Role.INTEGRATION, mfa=False)
    _, token = AuthToken.objects.create(user=user, expiry=None)
    assert token_client(token).get("/api/ledger/accounts").status_code == 403


@pytest.mark.parametrize("scope", ["billing", "billing:admin", "ledgers:read", ":read", "*"])
def test_an_unknown_scope_is_refused_and_creates_nothing(scope) -> None:
    with pytest.raises(CommandError, match="Unknown scope"):
        create_token(scope)
    assert not User.objects.filter(username="erp").exists()
    assert AuthToken.objects.count() == 0


def test_a_token_needs_a_scope() -> None:
    with pytest.raises(CommandError):
        call_command("create_api_token", "--username", "erp", "--role", Role.INTEGRATION)


def test_sessions_are_not_scoped(client_for) -> None:
    client = client_for(Role.FINANCE_ADMIN)
    assert client.get(VENDORS).status_code == 200
    assert client.get(CUSTOMERS).status_code == 200


def test_every_api_view_belongs_to_an_area() -> None:
    # a new app's API must be given an area, or no token could ever reach it
    missing = [
        route
        for route, callback in api_views()
        if (view_class := getattr(callback, "view_class", None)) is not None
        and getattr(view_class, "required_permissions", None) != PUBLIC
        and getattr(view_class, "authentication_classes", None) != []
        and view_area(view_class()) not in API_AREAS
    ]
    assert missing == []


def test_every_area_is_a_valid_scope() -> None:
    for area in API_AREAS:
        assert scope_parse(f"{area}:read").allows(area, "read")
        assert not scope_parse(f"{area}:read").allows(area, "write")
        assert scope_parse("*:write").allows(area, "write")


def test_tokens_made_before_scopes_keep_every_area(make_user) -> None:
    # given a token from before the scope migration
    user = make_user(Role.INTEGRATION, mfa=False)
    _, token = AuthToken.objects.create(user=user, expiry=None)
    # when the migration's data step runs
    migration = importlib.import_module("core.migrations.0008_api_token_scope")
    migration.scope_existing_tokens(apps, None)
    # then it keeps working everywhere its role allows
    client = token_client(token)
    assert client.get(VENDORS).status_code == 200
    assert client.get(CUSTOMERS).status_code == 200


def test_scopes_are_stored_without_duplicates() -> None:
    create_token("billing:read", "billing:read", "ledger:write")
    assert ApiTokenScope.objects.get(token__user__username="erp").scopes == [
        "billing:read",
        "ledger:write",
    ]
