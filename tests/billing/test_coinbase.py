"""Coinbase Commerce against a local fake of POST /charges, with webhooks signed as Coinbase
signs them (RELIABILITY.md B3, B8, L8): a payment is recorded only on a verified
charge:confirmed, once, whatever the order and repetition of the deliveries."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone
from djmoney.money import Money
from rest_framework.test import APIClient

from billing.enums import InvoiceStatus
from billing.models import Invoice, Payment, ProcessorAttempt, WebhookEvent
from billing.services.customers import customer_create
from billing.services.invoices import LineInput, invoice_create
from billing.services.processor_payments import coinbase_charge_create, processor_attempts_resolve
from billing.services.webhooks import webhook_event_apply
from core.fx import fx_rate_set
from core.ledger.enums import AccountRole
from core.ledger.selectors import trial_balance
from tests.billing.fakes import coinbase_server
from tests.billing.fakes.coinbase_server import (
    FakeCoinbase,
    charge_event,
    running_fake_coinbase,
    sign,
)

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.billing.fakes.urls")]
D = Decimal
SECRET = "coinbase-shared-secret"
URL = "/api/billing/webhooks/coinbase"


@pytest.fixture
def fake(settings) -> Iterator[FakeCoinbase]:
    with running_fake_coinbase(timeout_sleep=1.0) as fake:
        settings.COINBASE_COMMERCE_API_KEY = coinbase_server.API_KEY
        settings.COINBASE_COMMERCE_API_BASE = fake.url
        settings.COINBASE_COMMERCE_TIMEOUT_SECONDS = 0.3
        settings.COINBASE_COMMERCE_WEBHOOK_SECRET = SECRET
        yield fake


def post(body: bytes | str, signature: str | None):
    extra = {} if signature is None else {"HTTP_X_CC_WEBHOOK_SIGNATURE": signature}
    return APIClient().generic("POST", URL, body, content_type="application/json", **extra)


def deliver(fake: FakeCoinbase, attempt: ProcessorAttempt, type_: str, event_id: str):
    body = json.dumps(
        charge_event(fake.charges[attempt.processor_charge_id], type_, event_id=event_id)
    )
    return post(body, sign(body, SECRET))


def open_charge(clerk, invoice: Invoice) -> ProcessorAttempt:
    return coinbase_charge_create(invoice_id=invoice.pk, actor=clerk).attempt


# --- charges (B3) ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("currency", "amount", "expected"),
    [("USD", "35.20", "35.20"), ("JPY", "1999", "1999"), ("KWD", "18.600", "18.600")],
)
def test_B3_the_charge_asks_for_the_decimal_string_with_our_ids(
    fake, clerk, currency, amount, expected, django_capture_on_commit_callbacks
) -> None:
    # given an open invoice in the currency
    if currency != "USD":
        rate = D("0.0067") if currency == "JPY" else D("3.25")
        fx_rate_set(base=currency, quote="USD", rate=rate, rate_date=timezone.localdate())
    buyer = customer_create(actor=clerk, name="Buyer", email="b@x.example", currency=currency)
    with django_capture_on_commit_callbacks(execute=False):
        invoice = invoice_create(
            actor=clerk,
            customer_id=buyer.pk,
            issue=True,
            lines=[
                LineInput(description="Plan", quantity=D(1), unit_price=D(amount), tax_rate=D(0))
            ],
        )
    # when
    checkout = coinbase_charge_create(invoice_id=invoice.pk, actor=clerk)
    # then
    (request,) = fake.creations()
    assert request.body["pricing_type"] == "fixed_price"
    assert request.body["local_price"] == {"amount": expected, "currency": currency}
    assert request.body["metadata"] == {
        "backoffice_attempt": checkout.attempt.idempotency_key,
        "invoice_id": str(invoice.pk),
        "customer_id": str(buyer.pk),
    }
    assert request.headers["x-cc-api-key"] == coinbase_server.API_KEY
    assert request.headers["x-cc-version"] == "2018-03-22"
    assert (
        checkout.url
        == f"https://commerce.coinbase.com/charges/{checkout.attempt.processor_charge_id}"
    )
    assert checkout.attempt.status == "pending"
    assert Payment.objects.count() == 0


def test_charge_through_the_api_then_confirmed_webhook_records_one_payment(
    fake, client_for, customer, make_invoice
) -> None:
    # given
    invoice = make_invoice("35.20")
    # when a charge is created
    response = client_for("ar_clerk").post(f"/api/billing/invoices/{invoice.pk}/coinbase-charge")
    # then
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["hosted_url"] == f"https://commerce.coinbase.com/charges/{body['charge_code']}"
    assert body["attempt"]["status"] == "pending"
    assert body["attempt"]["processor"] == "coinbase_commerce"
    attempt = ProcessorAttempt.objects.get(pk=body["attempt"]["id"])
    # when Coinbase confirms it, and delivers the event again
    first = deliver(fake, attempt, "charge:confirmed", "evt-confirmed-1")
    replay = deliver(fake, attempt, "charge:confirmed", "evt-confirmed-1")
    # then
    assert first.status_code == 200, first.json()
    assert first.json() == {"received": True, "duplicate": False, "event": "evt-confirmed-1"}
    assert replay.json()["duplicate"] is True
    attempt.refresh_from_db()
    assert attempt.status == "succeeded"
    (payment,) = Payment.objects.all()
    assert (payment.processor, payment.processor_charge_id) == (
        "coinbase_commerce",
        body["charge_code"],
    )
    assert payment.method == "cryptocurrency"
    assert payment.amount == Money("35.20", "USD")
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    lines = sorted(payment.ledger_entry.lines.values_list("account__role", "debit", "credit"))
    assert lines == [
        (AccountRole.ACCOUNTS_RECEIVABLE, D(0), D("35.20")),
        (AccountRole.PROCESSOR_CLEARING, D("35.20"), D(0)),
    ]
    assert trial_balance().is_balanced


@pytest.mark.parametrize(
    ("type_", "status", "code", "reason"),
    [
        ("charge:pending", "pending", "", ""),
        ("charge:failed", "failed", "charge_failed", "EXPIRED"),
        ("charge:delayed", "unknown", "", "UNRESOLVED DELAYED"),
    ],
)
def test_pending_failed_and_delayed_charges_record_no_payment(
    fake, clerk, customer, make_invoice, type_, status, code, reason
) -> None:
    attempt = open_charge(clerk, make_invoice("10.00"))
    assert deliver(fake, attempt, type_, f"evt-{type_}").status_code == 200
    attempt.refresh_from_db()
    assert (attempt.status, attempt.failure_code) == (status, code)
    assert reason in attempt.failure_message
    assert Payment.objects.count() == 0


def test_a_charge_coinbase_did_not_answer_is_failed_and_can_be_tried_again(
    fake, client_for, customer, make_invoice
) -> None:
    invoice = make_invoice("10.00")
    fake.queue("timeout")
    api = client_for("ar_clerk")
    response = api.post(f"/api/billing/invoices/{invoice.pk}/coinbase-charge")
    assert response.status_code == 502
    assert response.json()["code"] == "checkout_not_created"
    assert ProcessorAttempt.objects.get().failure_code == "processor_unreachable"
    assert api.post(f"/api/billing/invoices/{invoice.pk}/coinbase-charge").status_code == 201


def test_an_expired_charge_is_failed_by_the_check_and_a_late_confirmation_still_counts(
    fake, clerk, customer, make_invoice, time_machine
) -> None:
    # given a charge nobody paid within its hour
    invoice = make_invoice("10.00")
    attempt = open_charge(clerk, invoice)
    time_machine.move_to(timezone.now() + timedelta(minutes=30))
    assert processor_attempts_resolve() == {"pending": 1}
    time_machine.move_to(timezone.now() + timedelta(hours=1))
    # when the scheduled check runs
    assert processor_attempts_resolve() == {"failed": 1}
    attempt.refresh_from_db()
    assert attempt.failure_code == "charge_expired"
    assert len(fake.requests) == 1  # the charge's creation: Coinbase was never asked
    # when a confirmation arrives after all
    assert deliver(fake, attempt, "charge:confirmed", "evt-late").status_code == 200
    # then the money is recorded once
    attempt.refresh_from_db()
    assert attempt.status == "succeeded"
    assert Payment.objects.count() == 1


@pytest.mark.parametrize(
    ("role", "expected"),
    [("finance_admin", 201), ("ar_clerk", 201), ("controller", 403), ("auditor", 403)],
)
def test_coinbase_authorisation(fake, client_for, customer, make_invoice, role, expected):
    invoice = make_invoice("10.00")
    response = client_for(role).post(f"/api/billing/invoices/{invoice.pk}/coinbase-charge")
    assert response.status_code == expected


def test_the_card_number_guard_does_not_refuse_webhooks(fake, clerk, customer, make_invoice):
    # given an event whose metadata holds a Luhn-valid 16-digit number (e.g. an order number)
    attempt = open_charge(clerk, make_invoice("10.00"))
    event = charge_event(fake.charges[attempt.processor_charge_id], "charge:pending", event_id="e")
    event["event"]["data"]["metadata"]["order"] = "4242424242424242"
    body = json.dumps(event)
    # when / then: verified by its signature, never refused for its content
    assert post(body, sign(body, SECRET)).status_code == 200


# --- refused, with nothing written (B8) ----------------------------------------------------------


@pytest.mark.parametrize(
    "case",
    ["forged", "other secret", "re-serialised body", "no header", "empty", "not json", "no event"],
)
def test_B8_refused_coinbase_webhooks_are_400_and_write_nothing(
    fake, clerk, customer, make_invoice, case, django_assert_num_queries
) -> None:
    # given a genuine confirmation
    attempt = open_charge(clerk, make_invoice("35.20"))
    body = json.dumps(
        charge_event(fake.charges[attempt.processor_charge_id], "charge:confirmed", event_id="e1")
    )
    sent, signature = {
        "forged": (body, "0" * 64),
        "other secret": (body, sign(body, "another-secret")),
        "re-serialised body": (json.dumps(json.loads(body), indent=2), sign(body, SECRET)),
        "no header": (body, None),
        "empty": (body, ""),
        "not json": ("{nope", sign("{nope", SECRET)),
        "no event": ('{"id": 1}', sign('{"id": 1}', SECRET)),
    }[case]
    # when
    with django_assert_num_queries(0):
        response = post(sent, signature)
    # then
    assert response.status_code == 400, response.json()
    assert response.json()["code"] == "webhook_signature_invalid"
    assert WebhookEvent.objects.count() == 0
    assert Payment.objects.count() == 0
    attempt.refresh_from_db()
    assert attempt.status == "pending"


def test_B8_during_a_secret_rotation_both_secrets_verify(
    settings, fake, clerk, customer, make_invoice
):
    settings.COINBASE_COMMERCE_WEBHOOK_SECRET = f"new-secret,{SECRET}"
    attempt = open_charge(clerk, make_invoice("10.00"))
    body = json.dumps(
        charge_event(fake.charges[attempt.processor_charge_id], "charge:pending", event_id="r")
    )
    assert post(body, sign(body, SECRET)).status_code == 200
    assert post(body, sign(body, "new-secret")).json()["duplicate"] is True


# --- L8: a shuffled batch with duplicates ------------------------------------------------------


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


def test_L8_about_two_hundred_events_with_duplicates_shuffled_apply_once_like_the_ordered_replay(
    fake, clerk, customer, make_invoice
) -> None:
    # given 60 open charges and their events in Coinbase's order: confirmed, pending then
    # confirmed, failed, failed then a late confirmation, delayed, and types nobody handles
    attempts = [open_charge(clerk, make_invoice(f"{10 + n}.00")) for n in range(60)]
    ordered: list[dict] = []
    for n, attempt in enumerate(attempts):
        charge = fake.charges[attempt.processor_charge_id]
        steps = [
            ["charge:created", "charge:confirmed"],
            ["charge:created", "charge:pending", "charge:confirmed"],
            ["charge:created", "charge:failed"],
            ["charge:created", "charge:failed", "charge:confirmed"],
            ["charge:created", "charge:pending", "charge:delayed"],
        ][n % 5]
        ordered += [charge_event(charge, t, event_id=f"evt-{n}-{t}") for t in steps]
    assert len(ordered) == 156
    ids = {e["event"]["id"] for e in ordered}
    assert len(ids) == len(ordered)
    # the ordered replay, applied through the service and then rolled back
    with pytest.raises(_Rollback), transaction.atomic():
        for delivery in ordered:
            webhook_event_apply(provider="coinbase_commerce", event=delivery["event"])
        expected = _state()
        raise _Rollback
    assert WebhookEvent.objects.count() == 0
    # when they arrive shuffled over HTTP, 20% of the deliveries repeated
    rng = random.Random(20)
    deliveries = ordered + rng.sample(ordered, 39)
    rng.shuffle(deliveries)
    assert len(deliveries) == 195
    statuses = []
    for delivery in deliveries:
        body = json.dumps(delivery)
        statuses.append(post(body, sign(body, SECRET)).status_code)
    # then no 5xx, each event applied once, the same final state
    assert set(statuses) == {200}
    assert WebhookEvent.objects.count() == len(ordered)
    actual = _state()
    assert actual == expected
    assert Payment.objects.count() == 36  # 12 + 12 + 12 late confirmations
    assert sum(1 for a in actual["attempts"] if a[1] == "failed") == 12
    assert sum(1 for a in actual["attempts"] if a[1] == "unknown") == 12
    assert actual["unprocessed"] == 0
