"""Outbound events (issue 14 section 4): an event per committed change and none for a
rolled-back one, delivery retried after a receiver's 500s and timeouts, order kept per
object, signatures a receiver verifies from the README alone (rotation included), endpoints
disabled after repeated failure with their owner told, SSRF refusals, and the API."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.db import transaction
from django.utils import timezone

from billing.models import Invoice
from billing.services.customers import customer_create
from billing.services.invoices import LineInput, invoice_create, invoice_issue, invoice_void
from billing.services.overdue import invoices_overdue_announce
from billing.services.payments import AllocationInput, payment_record
from core.events import services as outbox
from core.events.models import Delivery, DeliveryAttempt, DeliveryStatus, Event
from core.events.services import (
    EndpointRefused,
    deliveries_send,
    endpoint_create,
    endpoint_secret_rotate,
    endpoint_update,
)
from core.roles import Role
from tests.core.events.receiver import Receiver, running_receiver

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture
def receiver(settings) -> Iterator[Receiver]:
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True  # a local receiver: development only
    with running_receiver() as receiver:
        yield receiver


@pytest.fixture
def clerk(make_user):
    return make_user(Role.FINANCE_ADMIN)


@pytest.fixture
def customer(clerk):
    return customer_create(actor=clerk, name="Hooks Ltd", email="ap@hooks.example", currency="USD")


@pytest.fixture
def draft(clerk, customer) -> Invoice:
    return invoice_create(
        actor=clerk,
        customer_id=customer.pk,
        lines=[LineInput(description="Work", quantity=D(1), unit_price=D("100.00"), tax_rate=D(0))],
    )


def later(minutes: float) -> timezone.datetime:
    return timezone.now() + timedelta(minutes=minutes)


# A receiver written from the README's "Verifying a webhook" section alone.
def verify(headers: dict[str, str], body: bytes, secret: str, tolerance: int = 300) -> dict:
    parts = [p.split("=", 1) for p in headers["webhook-signature"].split(",")]
    timestamp = next(v for k, v in parts if k == "t")
    if abs(time.time() - int(timestamp)) > tolerance:
        raise ValueError("too old")
    expected = hmac.new(
        secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    if not any(k == "v1" and hmac.compare_digest(v, expected) for k, v in parts):
        raise ValueError("bad signature")
    event = json.loads(body)
    assert event["id"] == headers["webhook-id"]
    return event


def test_an_event_per_committed_change_and_none_for_a_rolled_back_one(clerk, draft) -> None:
    # a change rolled back leaves no event
    with pytest.raises(RuntimeError), transaction.atomic():
        invoice_issue(actor=clerk, invoice_id=draft.pk)
        raise RuntimeError("the caller fails after the issue")
    assert Event.objects.count() == 0
    # committed: one event, with the invoice's figures
    invoice_issue(actor=clerk, invoice_id=draft.pk)
    (event,) = Event.objects.all()
    assert (event.type, event.object_type, event.object_id) == (
        "invoice.issued",
        "invoice",
        str(draft.pk),
    )
    assert event.data["total"] == "100.00"
    assert event.data["number"].startswith("INV-")
    # paid in full: the payment and the invoice each say so
    payment_record(
        actor=clerk,
        customer_id=draft.customer_id,
        amount=D("100.00"),
        currency="USD",
        method="wire_transfer",
        allocations=[AllocationInput(invoice_id=draft.pk, amount=D("100.00"))],
    )
    assert list(Event.objects.values_list("type", flat=True)) == [
        "invoice.issued",
        "payment.succeeded",
        "invoice.paid",
    ]


def test_deliveries_are_signed_and_verified_by_a_receiver_from_the_docs(
    receiver, clerk, finance_admin, draft
) -> None:
    endpoint = endpoint_create(actor=finance_admin, url=receiver.url)
    invoice_issue(actor=clerk, invoice_id=draft.pk)
    result = deliveries_send()
    assert (result.delivered, result.failed) == (1, 0)
    (request,) = receiver.requests
    event = verify(request.headers, request.body, endpoint.secret)
    assert event["type"] == "invoice.issued"
    assert event["object"] == {"type": "invoice", "id": str(draft.pk)}
    with pytest.raises(ValueError, match="bad signature"):
        verify(request.headers, request.body, "whsec_someone_else")
    with pytest.raises(ValueError, match="bad signature"):
        verify(request.headers, request.body.replace(b"100.00", b"900.00"), endpoint.secret)
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert delivery.last_status_code == 200
    assert delivery.last_response_ms is not None


def test_during_a_rotation_both_secrets_verify_and_after_it_only_the_new(
    receiver, clerk, finance_admin, draft
) -> None:
    endpoint = endpoint_create(actor=finance_admin, url=receiver.url)
    old = endpoint.secret
    rotated = endpoint_secret_rotate(
        actor=finance_admin, endpoint_id=endpoint.pk, overlap=timedelta(hours=1)
    )
    assert rotated.secret != old
    invoice_issue(actor=clerk, invoice_id=draft.pk)
    deliveries_send()
    (request,) = receiver.requests
    verify(request.headers, request.body, old)
    verify(request.headers, request.body, rotated.secret)
    # once the overlap is over, the old secret no longer signs
    rotated.previous_secret_expires_at = timezone.now() - timedelta(seconds=1)
    rotated.save()
    invoice_void(actor=clerk, invoice_id=draft.pk, reason="Typo")
    deliveries_send()
    last = receiver.requests[-1]
    verify(last.headers, last.body, rotated.secret)
    with pytest.raises(ValueError, match="bad signature"):
        verify(last.headers, last.body, old)


def test_a_receivers_500s_and_timeouts_are_retried_later_with_each_try_logged(
    receiver, clerk, finance_admin, draft, monkeypatch
) -> None:
    monkeypatch.setattr(outbox, "READ_TIMEOUT", 0.3)
    receiver.sleep = 1.0
    endpoint_create(actor=finance_admin, url=receiver.url)
    invoice_issue(actor=clerk, invoice_id=draft.pk)
    receiver.answer("500", "timeout")
    assert deliveries_send().failed == 1
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.last_status_code == 500
    # not tried again before its time
    assert deliveries_send().sent == 0
    # tried after 30 s: the receiver times out
    assert deliveries_send(now=later(1)).failed == 1
    delivery.refresh_from_db()
    assert "Timeout" in delivery.last_error
    assert delivery.next_attempt_at > later(0.9)  # the second wait is longer (1 minute)
    # then it answers 200: delivered once, three tries on record
    assert deliveries_send(now=later(3)).delivered == 1
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    tries = list(
        DeliveryAttempt.objects.filter(delivery=delivery).values_list("status_code", "error")
    )
    assert [t[0] for t in tries] == [500, None, 200]
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1  # one event, 3 tries


def test_order_is_kept_per_object_while_other_objects_go_on(
    receiver, clerk, finance_admin, draft, customer
) -> None:
    endpoint_create(actor=finance_admin, url=receiver.url)
    other = invoice_create(
        actor=clerk,
        customer_id=customer.pk,
        lines=[LineInput(description="X", quantity=D(1), unit_price=D("5.00"), tax_rate=D(0))],
    )
    invoice_issue(actor=clerk, invoice_id=draft.pk)
    invoice_void(actor=clerk, invoice_id=draft.pk, reason="Wrong customer")
    invoice_issue(actor=clerk, invoice_id=other.pk)
    receiver.answer("500")  # the first request fails: the draft's issue (sent first, alone)
    deliveries_send(limit=1)
    deliveries_send()

    def sent() -> list[str]:
        return [f"{e['type']}:{e['object']['id']}" for e in map(json.loads, receiver.bodies())]

    # the other invoice went on; the voided one's second event waits for its first
    assert sent()[0] == f"invoice.issued:{draft.pk}"
    assert set(sent()[1:]) == {f"invoice.issued:{other.pk}"}
    deliveries_send(now=later(1))
    deliveries_send(now=later(2))
    mine = [s for s in sent() if s.endswith(f":{draft.pk}")]
    assert mine == [
        f"invoice.issued:{draft.pk}",
        f"invoice.issued:{draft.pk}",
        f"invoice.voided:{draft.pk}",
    ]


def test_gives_up_after_three_days_and_disables_a_failing_endpoint_telling_its_owner(
    receiver, clerk, finance_admin, draft, settings, django_capture_on_commit_callbacks
) -> None:
    settings.WEBHOOK_DISABLE_AFTER_FAILURES = 3
    settings.WEBHOOK_DISABLE_AFTER_HOURS = 24
    endpoint = endpoint_create(actor=finance_admin, url=receiver.url)
    invoice_issue(actor=clerk, invoice_id=draft.pk)
    receiver.answer(*["410"] * 10)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        for hours in (0, 1, 30):
            deliveries_send(now=timezone.now() + timedelta(hours=hours))
    endpoint.refresh_from_db()
    assert not endpoint.enabled
    assert endpoint.consecutive_failures == 3
    assert "Every delivery failed" in endpoint.disabled_reason
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [finance_admin.email]
    assert endpoint.url in mail.outbox[0].body
    # a disabled endpoint gets nothing more, and new events are not queued for it
    invoice_void(actor=clerk, invoice_id=draft.pk, reason="Typo")
    assert Delivery.objects.filter(event__type="invoice.voided").count() == 0
    # enabled again: counts start afresh; a delivery 3 days old is given up
    endpoint_update(actor=finance_admin, endpoint_id=endpoint.pk, enabled=True)
    Event.objects.update(created_at=timezone.now() - timedelta(days=4))
    result = deliveries_send(now=timezone.now() + timedelta(days=2))
    assert result.gave_up == 1
    assert Delivery.objects.get().status == DeliveryStatus.FAILED


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://0.0.0.0/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://2130706433/hook",
        "ftp://example.com/hook",
        "https://user:pass@example.com/hook",
        "not a url",
    ],
)
def test_ssrf_private_and_odd_addresses_are_refused(finance_admin, settings, url) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    with pytest.raises(EndpointRefused):
        endpoint_create(actor=finance_admin, url=url)


def test_ssrf_an_address_that_turns_private_is_not_sent_to(
    receiver, clerk, finance_admin, draft, settings
) -> None:
    endpoint_create(actor=finance_admin, url=receiver.url)
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False  # e.g. its name now resolves inside
    invoice_issue(actor=clerk, invoice_id=draft.pk)
    deliveries_send()
    assert receiver.requests == []
    assert "private or loopback" in Delivery.objects.get().last_error


def test_production_wants_https(finance_admin, settings) -> None:
    settings.PRODUCTION = True
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    with pytest.raises(EndpointRefused, match="https"):
        endpoint_create(actor=finance_admin, url="http://hooks.example.com/in")


def test_invoice_overdue_is_told_once(clerk, draft) -> None:
    invoice_issue(actor=clerk, invoice_id=draft.pk)
    draft.refresh_from_db()
    assert invoices_overdue_announce(today=draft.due_date) == 0
    day_after = draft.due_date + timedelta(days=1)
    assert invoices_overdue_announce(today=day_after) == 1
    assert invoices_overdue_announce(today=day_after) == 0
    assert Event.objects.filter(type="invoice.overdue").count() == 1


def test_api_lists_pages_filters_and_replays_events(receiver, client_for, clerk, draft) -> None:
    api = client_for(Role.INTEGRATION)
    made = api.post("/api/webhook-endpoints", {"url": receiver.url}, format="json")
    assert made.status_code == 201
    assert made.json()["secret"].startswith("whsec_")
    assert "secret" not in api.get("/api/webhook-endpoints").json()[0]
    invoice_issue(actor=clerk, invoice_id=draft.pk)
    invoice_void(actor=clerk, invoice_id=draft.pk, reason="Typo")
    first = api.get("/api/events", {"limit": 1}).json()
    assert [e["type"] for e in first["results"]] == ["invoice.issued"]
    assert first["has_more"] is True
    second = api.get("/api/events", {"limit": 1, "after": first["next_after"]}).json()
    assert [e["type"] for e in second["results"]] == ["invoice.voided"]
    assert second["has_more"] is False
    voided = api.get("/api/events", {"type": "invoice.voided,invoice.paid"}).json()["results"]
    assert [e["id"] for e in voided] == [second["results"][0]["id"]]
    assert api.get("/api/events", {"type": "invoice.exploded"}).status_code == 400
    assert api.get("/api/events", {"after": "evt_nope"}).status_code == 404
    # replay: the same event (same id) delivered again
    deliveries_send()
    event_id = first["results"][0]["id"]
    assert api.post(f"/api/events/{event_id}/replay", {}, format="json").status_code == 202
    deliveries_send()
    ids = [r.headers["webhook-id"] for r in receiver.requests]
    assert ids.count(event_id) == 2
    # endpoints: changed, rotated; bad input is a 400 with the field
    endpoint_id = made.json()["id"]
    patched = api.patch(
        f"/api/webhook-endpoints/{endpoint_id}", {"event_types": ["invoice.paid"]}, format="json"
    )
    assert patched.json()["event_types"] == ["invoice.paid"]
    rotated = api.post(f"/api/webhook-endpoints/{endpoint_id}/rotate-secret", {}, format="json")
    assert rotated.json()["secret"] != made.json()["secret"]
    bad = api.patch(
        f"/api/webhook-endpoints/{endpoint_id}", {"event_types": ["nope"]}, format="json"
    )
    assert bad.status_code == 400


def test_roles(client_for) -> None:
    assert client_for(Role.AR_CLERK).get("/api/events").status_code == 403
    assert client_for(Role.AUDITOR).get("/api/events").status_code == 200
    assert (
        client_for(Role.CONTROLLER)
        .post("/api/webhook-endpoints", {"url": "https://example.com/h"}, format="json")
        .status_code
        == 403
    )
