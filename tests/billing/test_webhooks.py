"""Stripe webhooks with real signatures (RELIABILITY.md B8, L8): refused requests write
nothing, each event is applied once, and any delivery order ends in the same state."""

from __future__ import annotations

import copy
import json
import random
import time
from collections.abc import Iterator
from decimal import Decimal

import pytest
from django.db import transaction
from rest_framework.test import APIClient

from billing.models import Invoice, Payment, PaymentMethod, ProcessorAttempt, WebhookEvent
from billing.services.payment_methods import payment_method_add
from billing.services.processor_payments import invoice_charge
from billing.services.webhooks import webhook_event_apply
from core.ledger.models import JournalEntry
from core.ledger.selectors import trial_balance
from tests.billing.fakes.stripe_server import FakeStripe, intent_event, running_fake_stripe, sign

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.billing.fakes.urls")]
SECRET = "whsec_test_secret"
URL = "/api/billing/webhooks/stripe"
D = Decimal


@pytest.fixture
def fake(settings) -> Iterator[FakeStripe]:
    with running_fake_stripe() as fake:
        settings.STRIPE_SECRET_KEY = "sk_test_fake"
        settings.STRIPE_API_BASE = fake.url
        settings.STRIPE_TIMEOUT_SECONDS = 2
        settings.STRIPE_WEBHOOK_SECRET = SECRET
        yield fake


@pytest.fixture
def card(clerk, customer) -> PaymentMethod:
    return payment_method_add(
        actor=clerk,
        customer_id=customer.pk,
        type="credit_card",
        processor="stripe",
        processor_customer_id="cus_Acme",
        processor_token="pm_card_acme",
    )


@pytest.fixture
def webhook() -> APIClient:
    return APIClient()


def post(client: APIClient, body: bytes | str, signature: str | None):
    extra = {} if signature is None else {"HTTP_STRIPE_SIGNATURE": signature}
    return client.generic("POST", URL, body, content_type="application/json", **extra)


def pending_attempt(fake, clerk, card, make_invoice, amount: str = "35.20") -> ProcessorAttempt:
    """An attempt Stripe is still processing: its outcome comes by webhook."""
    invoice = make_invoice(amount)
    fake.queue("processing")
    return invoice_charge(invoice_id=invoice.pk, payment_method_id=card.pk, actor=clerk)


def succeeded(fake: FakeStripe, attempt: ProcessorAttempt) -> dict:
    intent = copy.deepcopy(fake.intents[attempt.processor_intent_id])
    n = intent["id"][len("pi_fake") :]
    intent.update(status="succeeded", latest_charge=f"ch_fake{n}", amount_received=intent["amount"])
    return intent


def failed(fake: FakeStripe, attempt: ProcessorAttempt, decline_code: str) -> dict:
    intent = copy.deepcopy(fake.intents[attempt.processor_intent_id])
    intent.update(
        status="requires_payment_method",
        last_payment_error={
            "type": "card_error",
            "code": "card_declined",
            "decline_code": decline_code,
            "message": "Your card was declined.",
        },
    )
    return intent


def body_of(event: dict) -> str:
    return json.dumps(event, separators=(",", ":"))


# --- applied once ------------------------------------------------------------------------


def test_payment_intent_succeeded_records_one_payment_and_a_replay_is_acknowledged(
    fake, clerk, card, make_invoice, webhook
) -> None:
    # given
    attempt = pending_attempt(fake, clerk, card, make_invoice)
    body = body_of(
        intent_event(succeeded(fake, attempt), "payment_intent.succeeded", event_id="evt_1")
    )
    # when
    first = post(webhook, body, sign(body, SECRET))
    replay = post(webhook, body, sign(body, SECRET))
    # then
    assert first.status_code == 200, first.json()
    assert first.json() == {"received": True, "duplicate": False, "event": "evt_1"}
    assert replay.status_code == 200
    assert replay.json()["duplicate"] is True
    attempt.refresh_from_db()
    assert attempt.status == "succeeded"
    assert attempt.payment.processor_charge_id == attempt.processor_charge_id
    assert Payment.objects.count() == 1
    assert attempt.invoice.status == "paid"
    (event,) = WebhookEvent.objects.all()
    assert (event.provider, event.type) == ("stripe", "payment_intent.succeeded")
    assert event.processed_at is not None
    assert event.payload["id"] == "evt_1"
    assert trial_balance().is_balanced


def test_payment_failed_fails_the_attempt_with_the_decline_code(
    fake, clerk, card, make_invoice, webhook
) -> None:
    attempt = pending_attempt(fake, clerk, card, make_invoice)
    event = intent_event(
        failed(fake, attempt, "insufficient_funds"), "payment_intent.payment_failed", event_id="e2"
    )
    response = post(webhook, body_of(event), sign(body_of(event), SECRET))
    assert response.status_code == 200
    attempt.refresh_from_db()
    assert (attempt.status, attempt.failure_code) == ("failed", "insufficient_funds")
    assert Payment.objects.count() == 0


def test_a_late_failure_after_a_success_changes_nothing(fake, clerk, card, make_invoice, webhook):
    attempt = pending_attempt(fake, clerk, card, make_invoice)
    ok = body_of(intent_event(succeeded(fake, attempt), "payment_intent.succeeded", event_id="a"))
    ko = body_of(
        intent_event(
            failed(fake, attempt, "expired_card"), "payment_intent.payment_failed", event_id="b"
        )
    )
    assert post(webhook, ok, sign(ok, SECRET)).status_code == 200
    assert post(webhook, ko, sign(ko, SECRET)).status_code == 200
    attempt.refresh_from_db()
    assert (attempt.status, attempt.failure_code) == ("succeeded", "")
    assert Payment.objects.count() == 1


def test_an_intent_that_is_not_ours_is_stored_and_ignored(webhook, fake) -> None:
    intent = {
        "id": "pi_elsewhere",
        "object": "payment_intent",
        "status": "succeeded",
        "amount": 500,
        "currency": "usd",
        "metadata": {},
    }
    body = body_of(intent_event(intent, "payment_intent.succeeded", event_id="evt_x"))
    assert post(webhook, body, sign(body, SECRET)).status_code == 200
    event = WebhookEvent.objects.get()
    assert event.outcome.startswith("ignored")
    assert Payment.objects.count() == 0


# --- refused, with nothing written (B8) ------------------------------------------------------


def _refusals(body: str) -> dict[str, tuple[str, str | None]]:
    now = int(time.time())
    reserialised = json.dumps(json.loads(body), indent=2)
    return {
        "forged": (body, f"t={now},v1={'0' * 64}"),
        "other secret": (body, sign(body, "whsec_another_secret")),
        "re-serialised body": (reserialised, sign(body, SECRET, now)),
        "too old": (body, sign(body, SECRET, now - 301)),
        "too far in the future": (body, sign(body, SECRET, now + 3600)),
        # a second timestamp read by the future check but not by the SDK's HMAC check
        "two timestamps": (body, f" t={now},{sign(body, SECRET, now + 3600)}"),
        "two timestamps, the same": (body, f"{sign(body, SECRET, now)},t={now}"),
        "no header": (body, None),
        "garbage header": (body, "nonsense"),
        "no v1": (body, f"t={now},v0=abc"),
        "not an event": ("[1, 2]", sign("[1, 2]", SECRET)),
    }


@pytest.mark.parametrize(
    "case",
    [
        "forged",
        "other secret",
        "re-serialised body",
        "too old",
        "too far in the future",
        "two timestamps",
        "two timestamps, the same",
        "no header",
        "garbage header",
        "no v1",
        "not an event",
    ],
)
def test_B8_refused_webhooks_are_400_and_write_nothing(
    fake, clerk, card, make_invoice, webhook, case, django_assert_num_queries
) -> None:
    # given a genuine event body
    attempt = pending_attempt(fake, clerk, card, make_invoice)
    body = body_of(intent_event(succeeded(fake, attempt), "payment_intent.succeeded", event_id="e"))
    sent, signature = _refusals(body)[case]
    # when
    with django_assert_num_queries(0):
        response = post(webhook, sent, signature)
    # then
    assert response.status_code == 400
    assert response.json()["code"] == "webhook_signature_invalid"
    assert set(response.json()) >= {"code", "message", "errors"}
    assert WebhookEvent.objects.count() == 0
    assert Payment.objects.count() == 0


def test_B8_a_timestamp_a_little_ahead_is_accepted(fake, webhook) -> None:
    body = body_of({"id": "evt_skew", "object": "event", "type": "customer.created", "data": {}})
    response = post(webhook, body, sign(body, SECRET, int(time.time()) + 30))
    assert response.status_code == 200


def test_B8_during_a_secret_rotation_both_secrets_verify(settings, fake, webhook) -> None:
    settings.STRIPE_WEBHOOK_SECRET = f"whsec_new,{SECRET}"
    body = body_of({"id": "evt_rot", "object": "event", "type": "customer.created", "data": {}})
    assert post(webhook, body, sign(body, SECRET)).status_code == 200
    assert post(webhook, body, sign(body, "whsec_new")).json()["duplicate"] is True


# --- the real sample payloads ----------------------------------------------------------------


def envelope(obj: dict, type_: str, event_id: str) -> str:
    """A Stripe event around a real object; the body keeps Stripe's pretty-printing."""
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "api_version": "2020-08-27",
            "created": 1625755540,
            "data": {"object": obj},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": type_,
        },
        indent=2,
    )


@pytest.mark.corpus
def test_real_event_file_is_verified_from_its_exact_bytes_and_stored_once(
    shared_data, fake, webhook
) -> None:
    # given the file exactly as Stripe sent it
    raw = (shared_data / "stripe" / "event_external_account_bank_account_updated.json").read_bytes()
    # when
    first = post(webhook, raw, sign(raw, SECRET))
    replay = post(webhook, raw, sign(raw, SECRET))
    # then
    assert first.status_code == 200, first.json()
    assert replay.json()["duplicate"] is True
    event = WebhookEvent.objects.get()
    assert (event.event_id, event.type) == (
        "evt_1IuKmFQveW0ONQsdEAB1O64Y",
        "account.external_account.updated",
    )
    assert event.outcome == "ignored: event type not handled"
    # and the same bytes with one space less fail
    assert post(webhook, raw.replace(b": ", b":"), sign(raw, SECRET)).status_code == 400


@pytest.mark.corpus
@pytest.mark.parametrize(
    ("file", "type_", "outcome"),
    [
        # A refund of a charge this back-office did not record is not booked.
        ("charge.json", "charge.refunded", "ignored: not a charge of ours"),
        ("dispute_funds_reinstated_full.json", "charge.dispute.created", "stored"),
    ],
)
def test_real_charge_and_dispute_events_are_stored_and_record_nothing(
    shared_data, fake, webhook, file, type_, outcome
) -> None:
    obj = json.loads((shared_data / "stripe" / file).read_text())
    body = envelope(obj, type_, f"evt_{obj['id']}")
    entries = JournalEntry.objects.count()
    response = post(webhook, body, sign(body, SECRET))
    assert response.status_code == 200, response.json()
    event = WebhookEvent.objects.get()
    assert (event.type, event.outcome) == (type_, outcome)
    assert event.payload["data"]["object"]["id"] == obj["id"]
    assert Payment.objects.count() == 0
    assert JournalEntry.objects.count() == entries


# --- L8: 1,000 events, 20% duplicates, shuffled -------------------------------------------


def _state() -> dict:
    return {
        "attempts": sorted(
            ProcessorAttempt.objects.values_list(
                "idempotency_key", "status", "failure_code", "processor_charge_id"
            )
        ),
        "payments": sorted(
            (p.processor_charge_id, p.amount.amount, p.status) for p in Payment.objects.all()
        ),
        "invoices": sorted(
            (i.number, i.status, i.amount_paid.amount) for i in Invoice.objects.all()
        ),
        "events": sorted(
            WebhookEvent.objects.values_list("event_id", "type").filter(processed_at__isnull=False)
        ),
        "unprocessed": WebhookEvent.objects.filter(processed_at__isnull=True).count(),
        "balanced": trial_balance().is_balanced,
    }


class _Rollback(Exception):
    pass


@pytest.mark.corpus
def test_L8_a_thousand_events_with_duplicates_shuffled_apply_once_like_the_ordered_replay(
    shared_data, fake, clerk, card, make_invoice, webhook
) -> None:
    # given 60 attempts Stripe is processing
    attempts = [pending_attempt(fake, clerk, card, make_invoice, f"{10 + n}.00") for n in range(60)]
    charge = json.loads((shared_data / "stripe" / "charge.json").read_text())
    dispute = json.loads(
        (shared_data / "stripe" / "dispute_funds_reinstated_full.json").read_text()
    )
    # and 800 distinct events in Stripe's order: successes, declines, declines then a success
    # of the same intent (retried), refunds, disputes and types nobody handles
    ordered: list[dict] = []
    for n, attempt in enumerate(attempts):
        if n % 3 == 0:
            ordered.append(
                intent_event(
                    succeeded(fake, attempt), "payment_intent.succeeded", event_id=f"evt_ok_{n}"
                )
            )
        elif n % 3 == 1:
            ordered.append(
                intent_event(
                    failed(fake, attempt, "insufficient_funds"),
                    "payment_intent.payment_failed",
                    event_id=f"evt_ko_{n}",
                )
            )
        else:
            ordered.append(
                intent_event(
                    failed(fake, attempt, "do_not_honor"),
                    "payment_intent.payment_failed",
                    event_id=f"evt_ko_{n}",
                )
            )
            ordered.append(
                intent_event(
                    succeeded(fake, attempt), "payment_intent.succeeded", event_id=f"evt_ok_{n}"
                )
            )
    n = 0
    while len(ordered) < 800:
        n += 1
        kind = n % 3
        if kind == 0:
            ordered.append(
                intent_event(
                    {**charge, "id": f"ch_r{n}"}, "charge.refunded", event_id=f"evt_rf_{n}"
                )
            )
        elif kind == 1:
            ordered.append(
                intent_event(
                    {**dispute, "id": f"dp_{n}"}, "charge.dispute.created", event_id=f"evt_dp_{n}"
                )
            )
        else:
            ordered.append(
                intent_event(
                    {"id": f"cus_{n}", "object": "customer"},
                    "customer.updated",
                    event_id=f"evt_cu_{n}",
                )
            )
    assert len({e["id"] for e in ordered}) == 800
    # the ordered replay, applied through the service and then rolled back
    with pytest.raises(_Rollback), transaction.atomic():
        for event in ordered:
            webhook_event_apply(provider="stripe", event=event)
        expected = _state()
        raise _Rollback
    assert WebhookEvent.objects.count() == 0
    # when the same events arrive shuffled, 200 of them twice, over HTTP
    rng = random.Random(8)
    deliveries = ordered + rng.sample(ordered, 200)
    rng.shuffle(deliveries)
    assert len(deliveries) == 1000
    statuses = []
    for event in deliveries:
        body = body_of(event)
        statuses.append(post(webhook, body, sign(body, SECRET)).status_code)
    # then no 5xx, each event applied once, and the same final state
    assert set(statuses) == {200}
    assert WebhookEvent.objects.count() == 800
    actual = _state()
    assert actual == expected
    assert Payment.objects.count() == 40  # 20 successes + 20 declined-then-succeeded
    assert sum(1 for a in actual["attempts"] if a[1] == "failed") == 20
    assert actual["unprocessed"] == 0
