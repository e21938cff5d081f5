"""PayPal (Orders v2) against a local fake at the HTTP layer (RELIABILITY.md B3, B8, F4, F5):
decimal strings in each currency's unit, one payment per order however often it is captured,
a capture whose answer was lost resolved from PayPal's word, webhooks verified by PayPal."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from djmoney.money import Money
from rest_framework.test import APIClient

from billing.enums import InvoiceStatus
from billing.models import Invoice, Payment, ProcessorAttempt, WebhookEvent
from billing.processors import paypal as paypal_adapter
from billing.processors.paypal import CurrencyNotSupported, amount_value
from billing.services.customers import customer_create
from billing.services.invoices import LineInput, invoice_create
from billing.services.processor_payments import (
    paypal_order_capture,
    paypal_order_create,
    processor_attempts_resolve,
)
from billing.tasks_processors import processor_attempts_resolve_task
from core.fx import fx_rate_set
from core.ledger.enums import AccountRole
from core.ledger.selectors import trial_balance
from tests.billing.fakes import paypal_server
from tests.billing.fakes.paypal_server import FakePayPal, capture_event, running_fake_paypal

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.billing.fakes.urls")]
D = Decimal
WEBHOOK_URL = "/api/billing/webhooks/paypal"


@pytest.fixture
def fake(settings) -> Iterator[FakePayPal]:
    with running_fake_paypal(timeout_sleep=1.0) as fake:
        settings.PAYPAL_CLIENT_ID = paypal_server.CLIENT_ID
        settings.PAYPAL_CLIENT_SECRET = paypal_server.CLIENT_SECRET
        settings.PAYPAL_API_BASE = fake.url
        settings.PAYPAL_TIMEOUT_SECONDS = 0.3
        settings.PAYPAL_WEBHOOK_ID = paypal_server.WEBHOOK_ID
        yield fake


def payments_of(invoice: Invoice) -> list[Payment]:
    return list(Payment.objects.filter(allocations__invoice=invoice))


def approved_order(fake: FakePayPal, clerk, invoice: Invoice) -> ProcessorAttempt:
    checkout = paypal_order_create(invoice_id=invoice.pk, actor=clerk)
    fake.approve(checkout.attempt.processor_intent_id)
    return checkout.attempt


def invoice_in(clerk, currency: str, amount: str, capture) -> Invoice:
    if currency != "USD":
        fx_rate_set(
            base=currency,
            quote="USD",
            rate={"JPY": D("0.0067"), "KWD": D("3.25")}[currency],
            rate_date=timezone.localdate(),
        )
    buyer = customer_create(
        actor=clerk, name=f"Buyer {currency}", email="b@x.example", currency=currency
    )
    with capture(execute=False):
        return invoice_create(
            actor=clerk,
            customer_id=buyer.pk,
            issue=True,
            lines=[
                LineInput(description="Plan", quantity=D(1), unit_price=D(amount), tax_rate=D(0))
            ],
        )


# --- amounts (B3) ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("currency", "amount", "expected"),
    [("USD", "35.20", "35.20"), ("USD", "35.2", "35.20"), ("JPY", "1999", "1999")],
)
def test_B3_amount_value_is_a_decimal_string_in_the_currency_unit(currency, amount, expected):
    assert amount_value(D(amount), currency) == expected


@pytest.mark.parametrize(("currency", "amount"), [("KWD", "18.600"), ("HUF", "1000.50")])
def test_B3_amounts_paypal_cannot_take_are_refused(currency, amount):
    with pytest.raises(CurrencyNotSupported):
        amount_value(D(amount), currency)


@pytest.mark.parametrize(
    ("currency", "amount", "value", "minor"),
    [("USD", "35.20", "35.20", 3520), ("JPY", "1999", "1999", 1999)],
)
def test_B3_the_order_asks_paypal_for_the_decimal_string_with_our_request_id(
    fake, clerk, currency, amount, value, minor, django_capture_on_commit_callbacks
) -> None:
    # given
    invoice = invoice_in(clerk, currency, amount, django_capture_on_commit_callbacks)
    # when
    checkout = paypal_order_create(invoice_id=invoice.pk, actor=clerk)
    # then PayPal was asked once, for the exact decimal string, with our request id
    (request,) = fake.order_creations()
    unit = request.body["purchase_units"][0]
    assert request.body["intent"] == "CAPTURE"
    assert unit["amount"] == {"currency_code": currency, "value": value}
    assert unit["custom_id"] == checkout.attempt.idempotency_key
    assert unit["reference_id"] == str(invoice.pk)
    assert request.headers["paypal-request-id"] == checkout.attempt.idempotency_key
    assert request.headers["authorization"].startswith("Bearer A21AAfake")
    assert checkout.url.startswith("https://www.sandbox.paypal.com/checkoutnow?token=")
    assert checkout.attempt.status == "pending"
    assert checkout.attempt.amount_minor == minor


def test_B3_kwd_is_refused_with_400_before_paypal_is_called(
    fake, client_for, clerk, django_capture_on_commit_callbacks
) -> None:
    # given a KWD invoice of 18.600
    invoice = invoice_in(clerk, "KWD", "18.600", django_capture_on_commit_callbacks)
    # when
    response = client_for("ar_clerk").post(f"/api/billing/invoices/{invoice.pk}/paypal-order")
    # then
    assert response.status_code == 400, response.json()
    assert response.json()["code"] == "currency_not_supported"
    assert "KWD" in response.json()["message"]
    assert fake.requests == []
    assert ProcessorAttempt.objects.count() == 0


# --- orders and captures -----------------------------------------------------------------------


def test_order_then_capture_through_the_api_records_one_payment_and_pays_the_invoice(
    fake, client_for, customer, make_invoice
) -> None:
    # given
    invoice = make_invoice("35.20")
    api = client_for("ar_clerk")
    # when an order is created
    created = api.post(f"/api/billing/invoices/{invoice.pk}/paypal-order")
    # then
    assert created.status_code == 201, created.json()
    body = created.json()
    order_id = body["order_id"]
    assert body["approve_url"] == f"https://www.sandbox.paypal.com/checkoutnow?token={order_id}"
    assert body["attempt"]["status"] == "pending"
    assert body["attempt"]["processor"] == "paypal"
    assert (body["attempt"]["amount"], body["attempt"]["currency"]) == ("35.20", "USD")
    assert Payment.objects.count() == 0
    # when the payer approves and we capture
    fake.approve(order_id)
    captured = api.post(
        f"/api/billing/invoices/{invoice.pk}/paypal-capture", {"order_id": order_id}, format="json"
    )
    # then
    assert captured.status_code == 201, captured.json()
    attempt = captured.json()
    assert attempt["status"] == "succeeded"
    assert attempt["processor_intent_id"] == order_id
    (payment,) = payments_of(invoice)
    assert attempt["payment"] == payment.pk
    assert payment.processor == "paypal"
    assert payment.processor_charge_id == attempt["processor_charge_id"]
    assert payment.processor_charge_id.startswith("3C")
    assert payment.method == "credit_card"
    assert payment.amount == Money("35.20", "USD")
    (capture,) = fake.captures()
    assert (
        capture.headers["paypal-request-id"]
        == f"{payment.processor_attempt.idempotency_key}-capture"
    )
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    lines = sorted(payment.ledger_entry.lines.values_list("account__role", "debit", "credit"))
    assert lines == [
        (AccountRole.ACCOUNTS_RECEIVABLE, D(0), D("35.20")),
        (AccountRole.PROCESSOR_CLEARING, D("35.20"), D(0)),
    ]
    assert trial_balance().is_balanced


def test_a_capture_retried_records_one_payment(fake, clerk, customer, make_invoice) -> None:
    # given an approved order, captured once
    invoice = make_invoice("20.00")
    attempt = approved_order(fake, clerk, invoice)
    first = paypal_order_capture(
        invoice_id=invoice.pk, order_id=attempt.processor_intent_id, actor=clerk
    )
    # when captured again (a double click, a retried request)
    again = paypal_order_capture(
        invoice_id=invoice.pk, order_id=attempt.processor_intent_id, actor=clerk
    )
    # then
    assert first.status == again.status == "succeeded"
    assert first.payment_id == again.payment_id
    assert Payment.objects.count() == 1
    assert len(fake.captures()) == 1


def test_F4_a_capture_whose_answer_was_lost_and_retried_is_captured_and_recorded_once(
    fake, clerk, customer, make_invoice
) -> None:
    # given PayPal captured but its answer came after we gave up
    invoice = make_invoice("20.00")
    attempt = approved_order(fake, clerk, invoice)
    fake.queue("timeout")
    lost = paypal_order_capture(
        invoice_id=invoice.pk, order_id=attempt.processor_intent_id, actor=clerk
    )
    assert lost.status == "unknown"
    assert Payment.objects.count() == 0
    # when the capture is sent again with the same PayPal-Request-Id
    again = paypal_order_capture(
        invoice_id=invoice.pk, order_id=attempt.processor_intent_id, actor=clerk
    )
    # then PayPal replays its first answer: one capture, one payment
    assert again.status == "succeeded"
    ids = {c.headers["paypal-request-id"] for c in fake.captures()}
    assert ids == {f"{attempt.idempotency_key}-capture"}
    (payment,) = payments_of(invoice)
    order = fake.orders[attempt.processor_intent_id]
    assert len(order["purchase_units"][0]["payments"]["captures"]) == 1
    assert (
        payment.processor_charge_id == order["purchase_units"][0]["payments"]["captures"][0]["id"]
    )


def test_F4_a_capture_timeout_is_unknown_and_resolved_once_by_the_task_run_twice(
    fake, clerk, customer, make_invoice
) -> None:
    # given
    invoice = make_invoice("35.20")
    attempt = approved_order(fake, clerk, invoice)
    fake.queue("timeout")
    assert (
        paypal_order_capture(
            invoice_id=invoice.pk, order_id=attempt.processor_intent_id, actor=clerk
        ).status
        == "unknown"
    )
    # when the scheduled check runs twice
    first = processor_attempts_resolve_task.delay().get()
    second = processor_attempts_resolve_task.delay().get()
    # then it read the order (GET) and recorded the capture once
    assert first == {"succeeded": 1}
    assert second == {}
    attempt.refresh_from_db()
    assert attempt.status == "succeeded"
    assert len(payments_of(invoice)) == 1
    assert len(fake.captures()) == 1
    assert len(fake.calls("GET", r"/v2/checkout/orders/[^/]+")) == 1
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    assert trial_balance().is_balanced


def test_an_order_paypal_did_not_answer_is_failed_and_the_invoice_can_be_tried_again(
    fake, client_for, customer, make_invoice
) -> None:
    # given PayPal does not answer the order creation
    invoice = make_invoice("10.00")
    fake.queue("server_error")
    api = client_for("ar_clerk")
    # when
    response = api.post(f"/api/billing/invoices/{invoice.pk}/paypal-order")
    # then no link was handed out: the attempt is failed and nothing blocks a new order
    assert response.status_code == 502, response.json()
    assert response.json()["code"] == "checkout_not_created"
    attempt = ProcessorAttempt.objects.get()
    assert (attempt.status, attempt.failure_code) == ("failed", "processor_unreachable")
    assert api.post(f"/api/billing/invoices/{invoice.pk}/paypal-order").status_code == 201


def test_a_second_order_while_one_is_awaited_is_409(fake, client_for, customer, make_invoice):
    invoice = make_invoice("10.00")
    api = client_for("ar_clerk")
    assert api.post(f"/api/billing/invoices/{invoice.pk}/paypal-order").status_code == 201
    again = api.post(f"/api/billing/invoices/{invoice.pk}/paypal-order")
    assert again.status_code == 409
    assert again.json()["code"] == "charge_in_progress"
    assert len(fake.order_creations()) == 1


def test_a_capture_before_approval_is_409_and_changes_nothing(
    fake, client_for, clerk, customer, make_invoice
) -> None:
    invoice = make_invoice("10.00")
    checkout = paypal_order_create(invoice_id=invoice.pk, actor=clerk)
    response = client_for("ar_clerk").post(
        f"/api/billing/invoices/{invoice.pk}/paypal-capture",
        {"order_id": checkout.attempt.processor_intent_id},
        format="json",
    )
    assert response.status_code == 409
    assert response.json()["code"] == "order_not_approved"
    checkout.attempt.refresh_from_db()
    assert checkout.attempt.status == "pending"
    assert Payment.objects.count() == 0


def test_a_declined_funding_source_is_402_and_the_order_stays_open(
    fake, client_for, clerk, customer, make_invoice
) -> None:
    invoice = make_invoice("10.00")
    attempt = approved_order(fake, clerk, invoice)
    fake.queue("decline")
    response = client_for("ar_clerk").post(
        f"/api/billing/invoices/{invoice.pk}/paypal-capture",
        {"order_id": attempt.processor_intent_id},
        format="json",
    )
    assert response.status_code == 402
    assert response.json()["details"]["decline_code"] == "instrument_declined"
    attempt.refresh_from_db()
    assert attempt.status == "pending"
    assert Payment.objects.count() == 0


def test_an_order_of_another_invoice_is_404(fake, client_for, clerk, customer, make_invoice):
    invoice, other = make_invoice("10.00"), make_invoice("11.00")
    attempt = approved_order(fake, clerk, invoice)
    response = client_for("ar_clerk").post(
        f"/api/billing/invoices/{other.pk}/paypal-capture",
        {"order_id": attempt.processor_intent_id},
        format="json",
    )
    assert response.status_code == 404
    assert fake.captures() == []


def test_the_check_captures_an_approved_order_left_behind_and_fails_an_expired_one(
    fake, clerk, customer, make_invoice, time_machine
) -> None:
    # given one order approved but never captured, one never approved
    approved = approved_order(fake, clerk, make_invoice("10.00"))
    waiting = paypal_order_create(invoice_id=make_invoice("12.00").pk, actor=clerk).attempt
    # when checked once they are stale
    time_machine.move_to(timezone.now() + timedelta(minutes=6))
    assert processor_attempts_resolve() == {"succeeded": 1, "pending": 1}
    # and again after PayPal's 3 hours
    time_machine.move_to(timezone.now() + timedelta(hours=3))
    assert processor_attempts_resolve() == {"failed": 1}
    # then
    approved.refresh_from_db()
    waiting.refresh_from_db()
    assert approved.status == "succeeded"
    assert (waiting.status, waiting.failure_code) == ("failed", "order_expired")
    assert Payment.objects.count() == 1
    assert len(fake.captures()) == 1


def test_the_token_is_fetched_once_and_reused(fake, clerk, customer, make_invoice) -> None:
    paypal_adapter._tokens.clear()
    approved_order(fake, clerk, make_invoice("10.00"))
    approved_order(fake, clerk, make_invoice("11.00"))
    assert len(fake.calls("POST", r"/v1/oauth2/token")) == 1


@pytest.mark.parametrize(
    ("role", "expected"),
    [("finance_admin", 201), ("ar_clerk", 201), ("controller", 403), ("auditor", 403)],
)
def test_paypal_authorisation(fake, client_for, clerk, customer, make_invoice, role, expected):
    invoice = make_invoice("10.00")
    assert (
        client_for(role).post(f"/api/billing/invoices/{invoice.pk}/paypal-order").status_code
        == expected
    )
    other = make_invoice("11.00")
    attempt = approved_order(fake, clerk, other)
    response = client_for(role).post(
        f"/api/billing/invoices/{other.pk}/paypal-capture",
        {"order_id": attempt.processor_intent_id},
        format="json",
    )
    assert response.status_code == expected


def test_paypal_anonymous_is_refused(fake, customer, make_invoice) -> None:
    invoice = make_invoice("10.00")
    response = APIClient().post(f"/api/billing/invoices/{invoice.pk}/paypal-order")
    assert response.status_code in (401, 403)
    assert fake.requests == []


def test_without_paypal_configured_nothing_is_written(settings, clerk, customer, make_invoice):
    settings.PAYPAL_CLIENT_ID = ""
    invoice = make_invoice("10.00")
    with pytest.raises(Exception, match="not configured"):
        paypal_order_create(invoice_id=invoice.pk, actor=clerk)
    assert ProcessorAttempt.objects.count() == 0


# --- webhooks ----------------------------------------------------------------------------------


def post_event(body: bytes | str, headers: dict[str, str] | None):
    extra = {f"HTTP_{k.replace('-', '_')}": v for k, v in (headers or {}).items()}
    return APIClient().generic("POST", WEBHOOK_URL, body, content_type="application/json", **extra)


def test_F5_capture_completed_webhook_records_the_payment_once_after_a_crash(
    fake, clerk, customer, make_invoice, monkeypatch
) -> None:
    # given PayPal captured, but the process died before the payment was recorded
    invoice = make_invoice("35.20")
    attempt = approved_order(fake, clerk, invoice)

    def die(**kwargs):
        raise SystemExit("killed")

    monkeypatch.setattr("billing.services.processor_payments.payment_record", die)
    with pytest.raises(SystemExit):
        paypal_order_capture(
            invoice_id=invoice.pk, order_id=attempt.processor_intent_id, actor=clerk
        )
    monkeypatch.undo()
    assert Payment.objects.count() == 0
    # when PayPal's webhook arrives, twice
    event = capture_event(
        fake.capture_resource(attempt.processor_intent_id),
        "PAYMENT.CAPTURE.COMPLETED",
        event_id="WH-58D329510W468432D-8HN650336L201105X",
    )
    body = json.dumps(event)
    first = post_event(body, fake.sign(event))
    replay = post_event(body, fake.sign(event))
    # then
    assert first.status_code == 200, first.json()
    assert first.json()["duplicate"] is False
    assert replay.status_code == 200
    assert replay.json()["duplicate"] is True
    attempt.refresh_from_db()
    assert attempt.status == "succeeded"
    (payment,) = payments_of(invoice)
    assert payment.processor_charge_id == event["resource"]["id"]
    stored = WebhookEvent.objects.get()
    assert (stored.provider, stored.type) == ("paypal", "PAYMENT.CAPTURE.COMPLETED")
    assert stored.processed_at is not None
    # and capturing through the API afterwards records nothing more
    again = paypal_order_capture(
        invoice_id=invoice.pk, order_id=attempt.processor_intent_id, actor=clerk
    )
    assert again.payment_id == payment.pk
    assert Payment.objects.count() == 1
    assert trial_balance().is_balanced


def test_capture_denied_webhook_fails_the_attempt(fake, clerk, customer, make_invoice) -> None:
    invoice = make_invoice("10.00")
    attempt = paypal_order_create(invoice_id=invoice.pk, actor=clerk).attempt
    capture = {
        "id": "7TK53561YB803214S",
        "status": "DECLINED",
        "status_details": {"reason": "DECLINED_BY_RISK_FRAUD_FILTERS"},
        "amount": {"currency_code": "USD", "value": "10.00"},
        "custom_id": attempt.idempotency_key,
        "supplementary_data": {"related_ids": {"order_id": attempt.processor_intent_id}},
    }
    event = capture_event(capture, "PAYMENT.CAPTURE.DENIED", event_id="WH-DENIED-1")
    response = post_event(json.dumps(event), fake.sign(event))
    assert response.status_code == 200, response.json()
    attempt.refresh_from_db()
    assert (attempt.status, attempt.failure_code) == ("failed", "capture_denied")
    assert "DECLINED_BY_RISK_FRAUD_FILTERS" in attempt.failure_message
    assert Payment.objects.count() == 0


def _refusals(fake: FakePayPal, event: dict) -> dict[str, tuple[str, dict[str, str] | None]]:
    body = json.dumps(event)
    good = fake.sign(event)
    tampered = json.loads(body)
    tampered["resource"]["amount"]["value"] = "1.00"
    return {
        "forged signature": (body, {**good, "PAYPAL-TRANSMISSION-SIG": "AAAA"}),
        "other webhook id": (body, fake.sign(event, webhook_id="OTHERWEBHOOK")),
        "tampered body": (json.dumps(tampered), good),
        "unknown transmission": (body, {**good, "PAYPAL-TRANSMISSION-ID": "never-sent"}),
        "other time": (body, {**good, "PAYPAL-TRANSMISSION-TIME": "2020-01-01T00:00:00Z"}),
        "no headers": (body, None),
        "no signature": (body, {k: v for k, v in good.items() if k != "PAYPAL-TRANSMISSION-SIG"}),
        "not json": ("{not json", good),
        "not an event": ("[1, 2]", good),
    }


@pytest.mark.parametrize(
    "case",
    [
        "forged signature",
        "other webhook id",
        "tampered body",
        "unknown transmission",
        "other time",
        "no headers",
        "no signature",
        "not json",
        "not an event",
    ],
)
def test_B8_unverified_paypal_webhooks_are_400_and_write_nothing(
    fake, clerk, customer, make_invoice, case, django_assert_num_queries
) -> None:
    # given a genuine capture of an approved order
    invoice = make_invoice("35.20")
    attempt = approved_order(fake, clerk, invoice)
    paypal_order_capture(invoice_id=invoice.pk, order_id=attempt.processor_intent_id, actor=clerk)
    payments = Payment.objects.count()
    event = capture_event(
        fake.capture_resource(attempt.processor_intent_id),
        "PAYMENT.CAPTURE.COMPLETED",
        event_id="WH-REFUSED",
    )
    body, headers = _refusals(fake, event)[case]
    # when
    with django_assert_num_queries(0):
        response = post_event(body, headers)
    # then
    assert response.status_code == 400, response.json()
    assert response.json()["code"] == "webhook_signature_invalid"
    assert WebhookEvent.objects.count() == 0
    assert Payment.objects.count() == payments


def test_B8_when_paypal_cannot_verify_the_webhook_is_503_and_nothing_is_written(
    fake, settings, django_assert_num_queries
) -> None:
    event = capture_event(
        {"id": "X", "status": "COMPLETED"}, "PAYMENT.CAPTURE.COMPLETED", event_id="WH-1"
    )
    headers = fake.sign(event)
    settings.PAYPAL_API_BASE = "http://127.0.0.1:9"  # nothing listens there
    paypal_adapter._tokens.clear()
    with django_assert_num_queries(0):
        response = post_event(json.dumps(event), headers)
    assert response.status_code == 503
    assert WebhookEvent.objects.count() == 0


def test_an_event_of_another_order_is_stored_and_ignored(fake) -> None:
    capture = {
        "id": "1AB23456CD789012E",
        "status": "COMPLETED",
        "amount": {"currency_code": "USD", "value": "5.00"},
        "supplementary_data": {"related_ids": {"order_id": "9XX99999XX999999X"}},
    }
    event = capture_event(capture, "PAYMENT.CAPTURE.COMPLETED", event_id="WH-ELSEWHERE")
    assert post_event(json.dumps(event), fake.sign(event)).status_code == 200
    assert WebhookEvent.objects.get().outcome.startswith("ignored")
    assert Payment.objects.count() == 0
