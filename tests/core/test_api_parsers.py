"""Bodies the JSON parser accepts but nothing after it can handle are refused as 400 (issue 11)."""

from __future__ import annotations

import pytest

from billing.models import Customer
from tests.conftest import verified_client


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[" * 10_000 + "]" * 10_000, "nested too deeply"),
        ('{"a":' * 10_000 + "1" + "}" * 10_000, "nested too deeply"),
        ('{"name": "Acme \\ud800", "email": "ap@acme.example", "currency": "USD"}', "surrogate"),
        ('{"name": "Acme", "\\udc00": 1, "email": "ap@acme.example"}', "surrogate"),
    ],
    ids=["deep list", "deep object", "lone surrogate in a value", "lone surrogate in a key"],
)
def test_unparseable_json_is_a_400_and_nothing_is_written(finance_admin, body, message) -> None:
    # given
    client = verified_client(finance_admin)
    # when
    response = client.generic("POST", "/api/billing/customers", body, "application/json")
    # then
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"
    assert message in response.json()["message"]
    assert not Customer.objects.exists()


def test_paired_surrogates_are_text(finance_admin) -> None:
    # given
    client = verified_client(finance_admin)
    body = '{"name": "Acme \\ud83e\\uddfe", "email": "ap@acme.example", "currency": "USD"}'
    # when
    response = client.generic("POST", "/api/billing/customers", body, "application/json")
    # then
    assert response.status_code == 201
    assert Customer.objects.get().name == "Acme \U0001f9fe"
