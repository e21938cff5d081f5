"""Idempotency-Key on POST endpoints (issue 3 item 7; RELIABILITY.md L3, L4)."""

from __future__ import annotations

import json
import threading

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from rest_framework.test import APIClient

from core.ledger.models import JournalEntry
from core.models import IdempotencyRecord
from core.roles import Role
from tests.conftest import token_client as client_with_token
from tests.conftest import token_for

URL = "/api/ledger/journal-entries"


def body(amount: str = "25.00") -> dict:
    return {
        "entry_date": "2026-04-15",
        "description": "Accrual from the ERP",
        "lines": [
            {"account": "6000", "currency": "USD", "debit": amount},
            {"account": "1900", "currency": "USD", "credit": amount},
        ],
    }


def token_client(username: str) -> APIClient:
    user = User.objects.create_user(username=username)
    user.groups.add(Group.objects.get(name=Role.INTEGRATION))
    return client_with_token(token_for(user))


@pytest.mark.django_db
def test_same_key_and_body_returns_the_first_response() -> None:
    # given
    client = token_client("erp")
    first = client.post(URL, body(), format="json", HTTP_IDEMPOTENCY_KEY="accrual-2026-04")
    # when
    again = client.post(URL, body(), format="json", HTTP_IDEMPOTENCY_KEY="accrual-2026-04")
    # then
    assert first.status_code == 201
    assert again.status_code == 201
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"
    assert JournalEntry.objects.count() == 1


@pytest.mark.django_db
def test_L4_same_key_other_body_is_422_and_changes_nothing() -> None:
    client = token_client("erp")
    client.post(URL, body(), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    response = client.post(URL, body("30.00"), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_reused"
    assert JournalEntry.objects.count() == 1


@pytest.mark.django_db
def test_L4_keys_are_scoped_by_credential_and_endpoint(client_for) -> None:
    # given a person and an integration each using the key "same"
    person, erp = client_for(Role.FINANCE_ADMIN), token_client("erp")
    created = person.post(URL, body(), format="json", HTTP_IDEMPOTENCY_KEY="same")
    assert created.status_code == 201
    # when the other credential uses it, and the person uses it on another endpoint
    other = erp.post(URL, body(), format="json", HTTP_IDEMPOTENCY_KEY="same")
    reversal = person.post(
        f"{URL}/{created.json()['id']}/reverse",
        {"reason": "posted twice"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="same",
    )
    # then each is a request of its own
    assert other.status_code == 201
    assert reversal.status_code == 201
    assert reversal.json()["reversal_of"] == created.json()["id"]
    assert JournalEntry.objects.count() == 3
    assert IdempotencyRecord.objects.filter(key="same").count() == 3


@pytest.mark.django_db
def test_a_refused_request_is_stored_and_replayed_but_a_denied_one_is_not(client_for) -> None:
    client = token_client("erp")
    bad = {**body(), "lines": [{"account": "6000", "currency": "USD", "debit": "1.00"}]}
    first = client.post(URL, bad, format="json", HTTP_IDEMPOTENCY_KEY="bad-1")
    assert first.status_code == 400
    assert (
        client.post(URL, bad, format="json", HTTP_IDEMPOTENCY_KEY="bad-1").content == first.content
    )
    # a 403 is not stored: the same key works once the caller has the right
    clerk = client_for(Role.AR_CLERK)
    assert clerk.post(URL, body(), format="json", HTTP_IDEMPOTENCY_KEY="k").status_code == 403
    assert IdempotencyRecord.objects.filter(key="k").count() == 0


@pytest.mark.django_db
def test_bad_key_is_refused() -> None:
    client = token_client("erp")
    response = client.post(URL, body(), format="json", HTTP_IDEMPOTENCY_KEY="x" * 300)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_idempotency_key"
    assert JournalEntry.objects.count() == 0


@pytest.mark.django_db
def test_body_too_large_to_compare_is_refused_with_a_reason(settings) -> None:
    # given a body above what Django holds in memory
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
    client = token_client("erp")
    big = body()
    big["description"] = "x" * (1024 * 1024 + 1)
    # when it is sent with an Idempotency-Key
    response = client.post(URL, big, format="json", HTTP_IDEMPOTENCY_KEY="big-1")
    # then 413 with the reason, nothing written, nothing stored
    assert response.status_code == 413
    assert response.json()["code"] == "request_too_large_for_idempotency_key"
    assert JournalEntry.objects.count() == 0
    assert IdempotencyRecord.objects.count() == 0


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_L3_concurrent_duplicates_have_one_effect_and_identical_responses() -> None:
    # given one integration sending the same request 20 times at once
    token_client("erp")  # creates the user in this transaction-less test
    token = token_for(User.objects.get(username="erp"))
    payload = json.dumps(body())
    barrier = threading.Barrier(20)
    responses: list[tuple[int, bytes]] = []
    lock = threading.Lock()

    def send() -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        barrier.wait()
        try:
            r = client.post(
                URL, payload, content_type="application/json", HTTP_IDEMPOTENCY_KEY="dup-20"
            )
            with lock:
                responses.append((r.status_code, r.content))
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(20)]
    # when
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # then one entry, and every caller got the same 201 body
    assert JournalEntry.objects.count() == 1
    assert len(responses) == 20
    assert {status for status, _ in responses} == {201}
    assert len({content for _, content in responses}) == 1
    assert json.loads(responses[0][1])["id"] == JournalEntry.objects.get().pk
