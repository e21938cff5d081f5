"""The card-number guard walks bodies of any depth (C1), and never fails on them (B1)."""

from __future__ import annotations

from core.card_numbers import data_contains_card_number
from tests.conftest import verified_client


def test_a_card_number_nested_deeper_than_the_recursion_limit_is_found() -> None:
    # given
    data: object = {"note": "4242 4242 4242 4242"}
    for _ in range(5_000):
        data = [data]
    # when / then
    assert data_contains_card_number(data) is True
    assert data_contains_card_number([[[["no card here", 12]]]]) is False


def test_a_deeply_nested_body_with_a_card_is_refused_not_a_500(finance_admin) -> None:
    # given
    client = verified_client(finance_admin)
    body = "[" * 900 + '"4242 4242 4242 4242"' + "]" * 900
    # when
    response = client.generic("POST", "/api/billing/customers", body, "application/json")
    # then
    assert response.status_code == 400
    assert response.json()["code"] == "card_number_refused"
