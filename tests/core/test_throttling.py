"""API rate limits (issue 15 hole 4) and no-store answers (hole 7): one token's burst, one
address's calls, and failed authentications from one address are each refused with 429 and
Retry-After once over their limit; the counts are per token and per address."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db
URL = "/api/billing/customers"


@pytest.fixture
def limits(settings):
    cache.clear()
    settings.API_THROTTLE_RATES = {"token_burst": "5/sec", "token": "8/min", "address": "12/min"}
    settings.API_AUTH_FAILURES_PER_IP = 4
    settings.API_AUTH_FAILURE_WINDOW = timedelta(minutes=10)
    yield settings
    cache.clear()


def codes(client: APIClient, n: int, **extra) -> list[int]:
    return [client.get(URL, **extra).status_code for _ in range(n)]


def test_one_tokens_burst_is_limited_and_told_when_to_come_back(limits, integration_client):
    answers = codes(integration_client, 7)
    assert answers[:5] == [200] * 5
    assert answers[5:] == [429, 429]
    refused = integration_client.get(URL)
    assert refused.status_code == 429
    assert refused.json()["code"] == "throttled"
    assert 1 <= int(refused["Retry-After"]) <= 60


def test_the_minute_limit_holds_once_the_bursts_are_spread(limits, integration_client):
    limits.API_THROTTLE_RATES = {"token": "3/min"}
    assert codes(integration_client, 4) == [200, 200, 200, 429]


def test_tokens_are_counted_apart(limits, client_for):
    limits.API_THROTTLE_RATES = {"token_burst": "2/sec"}
    first, second = client_for("finance_admin"), client_for("controller")
    assert codes(first, 3) == [200, 200, 429]
    assert codes(second, 2) == [200, 200]


def test_one_address_is_limited_whoever_calls(limits, client_for):
    limits.API_THROTTLE_RATES = {"address": "3/min"}
    clients = [client_for("finance_admin"), client_for("controller"), client_for("auditor")]
    assert [c.get(URL).status_code for c in clients] == [200, 200, 200]
    assert client_for("ar_clerk").get(URL).status_code == 429
    # another address is not
    assert client_for("ar_clerk").get(URL, REMOTE_ADDR="198.51.100.9").status_code == 200


def test_failed_authentication_locks_the_address_out_before_any_token_is_read(
    limits, integration_client
):
    stranger = APIClient()
    bad = {"HTTP_AUTHORIZATION": "Token " + "f" * 64}
    assert codes(stranger, 4, **bad) == [401] * 4
    # then every call from that address is refused, even with a good token
    refused = stranger.get(URL, **bad)
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) == 600
    assert integration_client.get(URL).status_code == 429
    # another address still gets in
    assert integration_client.get(URL, REMOTE_ADDR="198.51.100.9").status_code == 200


def test_api_answers_are_never_cached(client_for):
    answer = client_for("finance_admin").get(URL)
    assert "no-store" in answer["Cache-Control"]
    assert "no-store" in APIClient().get(URL)["Cache-Control"]  # refusals too
