"""Refunds of Stripe payments, against the local fake at the HTTP layer: the money goes back
at Stripe first and is booked once Stripe confirms, under the Stripe refund id, so the API
answer, a retry, the webhooks and the scheduled check book it once; a refusal books nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.utils import timezone
from djmoney.money import Money

from billing.checks import ar_subledger_check
from billing.enums import InvoiceStatus
from billing.models import Invoice, Payment, PaymentMethod, Refund, WebhookEvent
from billing.services.customers import customer_create
from billing.services.invoices import LineInput, invoice_create
from billing.services.payment_methods import payment_method_add
from billing.services.payments import payment_record
from billing.services.processor_payments import invoice_charge
from billing.services.refunds import refund_create, stripe_refunds_resolve
from billing.tasks_processors import processor_attempts_resolve_task
from core.fx import fx_rate_set
from core.ledger.enums import AccountRole
from core.ledger.models import JournalEntry
from core.ledger.selectors import trial_balance
from tests.billing.fakes.stripe_server import FakeStripe, intent_event, running_fake_stripe, sign

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.billing.fakes.urls")]
D = Decimal
SECRET = "whsec_test_secret"
REFUNDS = "/api/billing/refunds"
WEBHOOK = "/api/billing/webhooks/stripe"


@pytest.fixture
def fake(settings) -> Iterator[FakeStripe]:
    with running_fake_stripe(timeout_sleep=1.0) as fake:
        settings.STRIPE_SECRET_KEY = "sk_test_fake"
        settings.STRIPE_API_BASE = fake.url
        settings.STRIPE_TIMEOUT_SECONDS = 0.3
        settings.STRIPE_WEBHOOK_SECRET = SECRET
        yield fake


def add_card(actor, customer) -> PaymentMethod:
    return payment_method_add(
        actor=actor,
        customer_id=customer.pk,
        type="credit_card",
        processor="stripe",
        processor_customer_id=f"cus_Test{customer.pk}",
        processor_token=f"pm_card_{customer.pk}",
        card_brand="visa",
        card_last4="4242",
        card_exp_month=12,
        card_exp_year=2030,
    )


def paid_by_card(clerk, customer, invoice: Invoice) -> Payment:
    """The invoice charged through Stripe: a Payment with processor "stripe" and its charge."""
    method = add_card(clerk, customer)
    attempt = invoice_charge(invoice_id=invoice.pk, payment_method_id=method.pk, actor=clerk)
    assert attempt.status == "succeeded"
    return attempt.payment


@pytest.fixture
def invoice(make_invoice) -> Invoice:
    return make_invoice("35.20")


@pytest.fixture
def payment(fake, clerk, customer, invoice) -> Payment:
    return paid_by_card(clerk, customer, invoice)


def refund_post(client, customer, payment, amount: str = "10.00", reason: str = "goodwill"):
    return client.post(
        REFUNDS,
        {"customer": customer.pk, "payment": payment.pk, "amount": amount, "reason": reason},
        format="json",
    )


def webhook_post(client, event: dict):
    body = json.dumps(event)
    return client.post(
        WEBHOOK, body, content_type="application/json", HTTP_STRIPE_SIGNATURE=sign(body, SECRET)
    )


def lines_of(refund: Refund) -> list[tuple[str, Decimal, Decimal]]:
    return sorted(refund.ledger_entry.lines.values_list("account__role", "debit", "credit"))


# --- made here, confirmed by Stripe ----------------------------------------------------------


def test_refund_of_a_stripe_payment_is_made_at_stripe_and_booked_once(
    fake, client_for, customer, invoice, payment
) -> None:
    # given an invoice of 35.20 paid by card through Stripe
    assert payment.processor_charge_id.startswith("ch_fake")
    # when a finance admin refunds 10.00 of it
    response = refund_post(client_for("finance_admin"), customer, payment)
    # then Stripe was asked once, for the charge, in minor units, with our key and ids
    assert response.status_code == 201, response.json()
    (request,) = fake.refund_requests()
    assert request.params["charge"] == payment.processor_charge_id
    assert request.params["amount"] == "1000"
    key = request.headers["idempotency-key"]
    assert key == f"bo_refund_{payment.pk}_1_1000"
    assert request.params["metadata"] == {
        "backoffice_refund": key,
        "payment_id": str(payment.pk),
        "customer_id": str(customer.pk),
        "reason": "goodwill",
    }
    # and one refund is booked under Stripe's refund id
    (stripe_refund,) = fake.refunds.values()
    refund = Refund.objects.get()
    body = response.json()
    assert (body["id"], body["amount"], body["processor_refund_id"]) == (
        refund.pk,
        "10.00",
        stripe_refund["id"],
    )
    assert refund.processor_refund_id == stripe_refund["id"]
    assert (refund.amount, refund.from_invoices, refund.from_credit_balance) == (
        Money("10.00", "USD"),
        Money("10.00", "USD"),
        Money("0", "USD"),
    )
    assert lines_of(refund) == [
        (AccountRole.ACCOUNTS_RECEIVABLE, D("10.00"), D(0)),
        (AccountRole.PROCESSOR_CLEARING, D(0), D("10.00")),
    ]
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_due) == (InvoiceStatus.OPEN, Money("10.00", "USD"))
    assert ar_subledger_check() == []
    assert trial_balance().is_balanced
    # and the webhooks Stripe then sends book nothing more
    client = client_for("finance_admin")
    charge = fake.charge_object(payment.processor_charge_id)
    for event in (
        intent_event(charge, "charge.refunded", event_id="evt_1"),
        intent_event(stripe_refund, "refund.created", event_id="evt_2"),
    ):
        assert webhook_post(client, event).status_code == 200
    assert Refund.objects.count() == 1
    assert processor_attempts_resolve_task.delay().get() == {}


@pytest.mark.parametrize(
    ("currency", "amount", "refunded", "minor"),
    [("JPY", "1999", "500", "500"), ("KWD", "18.600", "1.250", "1250")],
)
def test_amounts_go_to_stripe_in_minor_units(
    fake,
    clerk,
    finance_admin,
    currency,
    amount,
    refunded,
    minor,
    django_capture_on_commit_callbacks,
) -> None:
    # given a payment through Stripe in a currency with 0 or 3 decimals
    fx_rate_set(
        base=currency,
        quote="USD",
        rate=D("0.0067") if currency == "JPY" else D("3.25"),
        rate_date=timezone.localdate(),
    )
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
    payment = paid_by_card(clerk, buyer, invoice)
    # when
    outcome = refund_create(
        actor=finance_admin,
        customer_id=buyer.pk,
        payment_id=payment.pk,
        amount=D(refunded),
        reason="partial",
    )
    # then
    (request,) = fake.refund_requests()
    assert request.params["amount"] == minor
    assert outcome.status == "succeeded"
    assert outcome.refund.amount == Money(refunded, currency)
    assert ar_subledger_check() == []
    assert trial_balance().is_balanced


# --- refused --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "code", "processor_code"),
    [
        ("refuse", "charge_disputed", "charge_disputed"),
        ("refuse", "charge_already_refunded", "charge_already_refunded"),
        ("fail", "", "expired_or_canceled_card"),
    ],
)
def test_a_refund_stripe_refuses_is_409_and_books_nothing(
    fake, client_for, customer, invoice, payment, kind, code, processor_code
) -> None:
    # given
    entries = JournalEntry.objects.count()
    fake.queue_refund(kind, code=code or "charge_already_refunded")
    # when
    response = refund_post(client_for("finance_admin"), customer, payment)
    # then
    assert response.status_code == 409, response.json()
    body = response.json()
    assert body["code"] == "refund_refused"
    assert body["details"]["processor_code"] == processor_code
    assert body["message"].startswith("Stripe refused the refund")
    assert len(fake.refund_requests()) == 1
    assert Refund.objects.count() == 0
    assert JournalEntry.objects.count() == entries
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    assert ar_subledger_check() == []


def test_what_we_would_refuse_is_refused_before_stripe_is_asked(
    fake, client_for, customer, payment
) -> None:
    # when more than the payment is asked back, or by a role that may not refund
    too_much = refund_post(client_for("finance_admin"), customer, payment, amount="35.21")
    clerk = refund_post(client_for("ar_clerk"), customer, payment)
    # then
    assert too_much.status_code == 400
    assert too_much.json()["code"] == "over_refund"
    assert clerk.status_code == 403
    assert fake.refund_requests() == []
    assert Refund.objects.count() == 0


def test_without_stripe_configured_a_stripe_refund_is_refused_before_anything(
    fake, settings, finance_admin, customer, payment
) -> None:
    settings.STRIPE_SECRET_KEY = ""
    with pytest.raises(Exception, match="not configured"):
        refund_create(
            actor=finance_admin,
            customer_id=customer.pk,
            payment_id=payment.pk,
            amount=D("10.00"),
            reason="x",
        )
    assert fake.refund_requests() == []
    assert Refund.objects.count() == 0


# --- no answer, pending, crash --------------------------------------------------------------


def test_a_timeout_is_202_pending_and_the_scheduled_check_books_it_once(
    fake, client_for, customer, invoice, payment
) -> None:
    # given Stripe refunds but its answer comes after the client gave up
    fake.queue_refund("timeout")
    # when
    response = refund_post(client_for("finance_admin"), customer, payment, reason="late answer")
    # then nothing is booked yet
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["status"] == "pending"
    assert body["idempotency_key"] == f"bo_refund_{payment.pk}_1_1000"
    assert Refund.objects.count() == 0
    # when the scheduled check runs, twice
    first = processor_attempts_resolve_task.delay().get()
    second = processor_attempts_resolve_task.delay().get()
    # then the refund Stripe made is booked once, with the reason given
    assert first == {"refunds_booked": 1}
    assert second == {}
    (stripe_refund,) = fake.refunds.values()
    refund = Refund.objects.get()
    assert (refund.processor_refund_id, refund.reason, refund.amount) == (
        stripe_refund["id"],
        "late answer",
        Money("10.00", "USD"),
    )
    assert len(fake.refund_requests()) == 1
    assert ar_subledger_check() == []
    assert trial_balance().is_balanced


def test_a_retry_after_a_timeout_replays_stripes_answer_and_refunds_once(
    fake, client_for, customer, payment
) -> None:
    # given a refund whose answer was lost
    client = client_for("finance_admin")
    fake.queue_refund("timeout")
    assert refund_post(client, customer, payment).status_code == 202
    # when the same refund is asked again
    again = refund_post(client, customer, payment)
    # then Stripe replays its first refund for the same key: one refund, booked once
    assert again.status_code == 201, again.json()
    first, second = fake.refund_requests()
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"]
    assert len(fake.refunds) == 1
    assert Refund.objects.get().processor_refund_id == next(iter(fake.refunds))
    assert stripe_refunds_resolve() == {}


def test_a_server_error_refunds_nothing_and_the_check_books_nothing(
    fake, client_for, customer, payment
) -> None:
    fake.queue_refund("server_error")
    response = refund_post(client_for("finance_admin"), customer, payment)
    assert response.status_code == 202
    assert stripe_refunds_resolve() == {}
    assert fake.refunds == {}
    assert Refund.objects.count() == 0


def test_a_pending_refund_is_booked_when_stripe_reports_it_succeeded(
    fake, client_for, customer, payment
) -> None:
    # given Stripe accepted the refund but is still processing it
    fake.queue_refund("pending")
    client = client_for("finance_admin")
    response = refund_post(client, customer, payment)
    assert response.status_code == 202, response.json()
    (stripe_refund,) = fake.refunds.values()
    assert response.json()["processor_refund_id"] == stripe_refund["id"]
    assert stripe_refunds_resolve() == {}
    assert Refund.objects.count() == 0
    # when its refund.updated webhook says it succeeded (twice)
    stripe_refund["status"] = "succeeded"
    for _ in range(2):
        reply = webhook_post(client, intent_event(stripe_refund, "refund.updated", event_id="e1"))
        assert reply.status_code == 200
    # then
    refund = Refund.objects.get()
    assert refund.processor_refund_id == stripe_refund["id"]
    assert WebhookEvent.objects.get().outcome == f"refunds booked: {stripe_refund['id']}"


def test_a_crash_after_stripe_refunded_is_booked_once_by_the_webhook(
    fake, finance_admin, client, customer, payment, monkeypatch
) -> None:
    # given the process dies after Stripe refunded, before the refund is booked
    def die(**kwargs):
        raise SystemExit("killed")

    monkeypatch.setattr("billing.services.refunds.refund_issue", die)
    with pytest.raises(SystemExit):
        refund_create(
            actor=finance_admin,
            customer_id=customer.pk,
            payment_id=payment.pk,
            amount=D("35.20"),
            reason="full refund",
        )
    monkeypatch.undo()
    assert Refund.objects.count() == 0
    # when Stripe's charge.refunded arrives, twice
    charge = fake.charge_object(payment.processor_charge_id)
    event = intent_event(charge, "charge.refunded", event_id="evt_crash")
    replies = [webhook_post(client, event) for _ in range(2)]
    # then it is booked once
    assert [r.status_code for r in replies] == [200, 200]
    assert replies[1].json()["duplicate"] is True
    refund = Refund.objects.get()
    assert (refund.amount, refund.reason) == (Money("35.20", "USD"), "full refund")
    assert stripe_refunds_resolve() == {}
    assert ar_subledger_check() == []
    assert trial_balance().is_balanced


# --- made in the Stripe dashboard -----------------------------------------------------------


@pytest.mark.parametrize("embed_refunds", [True, False])
def test_a_dashboard_refund_is_booked_once_from_the_signed_charge_refunded_webhook(
    fake, client, customer, invoice, payment, embed_refunds
) -> None:
    # given 5.00 refunded in the Stripe dashboard
    stripe_refund = fake.refund_in_dashboard(payment.processor_charge_id, 500)
    charge = fake.charge_object(payment.processor_charge_id, embed_refunds=embed_refunds)
    event = intent_event(charge, "charge.refunded", event_id="evt_dash")
    # when the webhook arrives, and again
    first = webhook_post(client, event)
    replay = webhook_post(client, event)
    # then one refund is booked against the payment, the replay is acknowledged only
    assert first.status_code == 200, first.json()
    assert replay.json()["duplicate"] is True
    refund = Refund.objects.get()
    assert (refund.payment_id, refund.processor_refund_id, refund.amount, refund.created_by) == (
        payment.pk,
        stripe_refund["id"],
        Money("5.00", "USD"),
        None,
    )
    assert refund.reason == "Refunded in Stripe (requested by customer)"
    assert lines_of(refund) == [
        (AccountRole.ACCOUNTS_RECEIVABLE, D("5.00"), D(0)),
        (AccountRole.PROCESSOR_CLEARING, D(0), D("5.00")),
    ]
    event_row = WebhookEvent.objects.get()
    assert event_row.outcome == f"refunds booked: {stripe_refund['id']}"
    # and Stripe was only asked to list the charge's refunds when the event did not carry them
    listed = [r for r in fake.requests if r.method == "GET" and r.path == "/v1/refunds"]
    assert len(listed) == (0 if embed_refunds else 1)
    assert fake.refund_requests() == []
    assert ar_subledger_check() == []
    assert trial_balance().is_balanced
    # and a second event about the same refund books nothing more
    again = intent_event(stripe_refund, "refund.updated", event_id="evt_dash_2")
    assert webhook_post(client, again).status_code == 200
    assert Refund.objects.count() == 1


def test_a_dashboard_refund_whose_webhook_was_missed_is_booked_by_the_check(
    fake, customer, payment
) -> None:
    fake.refund_in_dashboard(payment.processor_charge_id, 3520)
    assert stripe_refunds_resolve() == {"refunds_booked": 1}
    assert stripe_refunds_resolve() == {}
    assert Refund.objects.get().amount == Money("35.20", "USD")


def test_a_refund_of_a_charge_that_is_not_ours_is_ignored(fake, client, payment) -> None:
    # given a refund at Stripe of a charge this back-office did not record
    other = fake.charge_object(payment.processor_charge_id)
    other.update(id="ch_elsewhere", payment_intent="pi_elsewhere")
    # when
    reply = webhook_post(client, intent_event(other, "charge.refunded", event_id="evt_other"))
    # then
    assert reply.status_code == 200
    assert WebhookEvent.objects.get().outcome == "ignored: not a charge of ours"
    assert Refund.objects.count() == 0


# --- manual refunds make no call ------------------------------------------------------------


def test_a_refund_of_an_ach_payment_makes_no_processor_call(
    fake, clerk, client_for, customer, make_invoice
) -> None:
    # given an ACH payment of 130.00 on an invoice of 100.00
    make_invoice("100.00")
    ach = payment_record(
        actor=clerk, customer_id=customer.pk, amount=D("130.00"), currency="USD", method="ach"
    )
    # when 50.00 of it is refunded through the API
    response = refund_post(client_for("finance_admin"), customer, ach, amount="50.00")
    # then it is booked at once (overpayment first, then the invoice), Stripe never hears of it
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["from_credit_balance"], body["from_invoices"], body["processor_refund_id"]) == (
        "30.00",
        "20.00",
        None,
    )
    assert fake.requests == []
    assert ar_subledger_check() == []
    assert trial_balance().is_balanced


def test_a_credit_balance_refund_makes_no_processor_call(
    fake, clerk, finance_admin, customer
) -> None:
    payment_record(
        actor=clerk,
        customer_id=customer.pk,
        amount=D("25.00"),
        currency="USD",
        method="wire_transfer",
    )
    outcome = refund_create(
        actor=finance_admin, customer_id=customer.pk, amount=D("25.00"), reason="closing account"
    )
    assert outcome.status == "succeeded"
    assert lines_of(outcome.refund) == [
        (AccountRole.CASH, D(0), D("25.00")),
        (AccountRole.CUSTOMER_CREDIT, D("25.00"), D(0)),
    ]
    assert fake.requests == []


@pytest.mark.corpus
def test_a_refund_in_the_real_charge_payload_is_booked_once(
    shared_data, fake, clerk, client, customer
) -> None:
    # given a card payment recorded for the charge of Stripe's real payload
    charge = json.loads((shared_data / "stripe" / "charge.json").read_text())
    payment = payment_record(
        actor=clerk,
        customer_id=customer.pk,
        amount=D("20.00"),
        currency="USD",
        method="credit_card",
        processor="stripe",
        processor_charge_id=charge["id"],
    )
    # and the charge refunded in full, its refund in the documented shape
    refund_object = {
        "id": "re_fakefakefakefakefake0001",
        "object": "refund",
        "amount": 2000,
        "charge": charge["id"],
        "created": charge["created"] + 3600,
        "currency": "usd",
        "metadata": {},
        "payment_intent": charge["payment_intent"],
        "reason": "duplicate",
        "status": "succeeded",
    }
    charge.update(amount_refunded=2000, refunded=True)
    charge["refunds"]["data"] = [refund_object]
    event = intent_event(charge, "charge.refunded", event_id="evt_real_refund")
    # when delivered twice
    replies = [webhook_post(client, event) for _ in range(2)]
    # then booked once, on the refund's date, from the customer's credit balance
    assert [r.status_code for r in replies] == [200, 200]
    refund = Refund.objects.get()
    assert (refund.payment_id, refund.amount, refund.reason) == (
        payment.pk,
        Money("20.00", "USD"),
        "Refunded in Stripe (duplicate)",
    )
    assert refund.from_credit_balance == Money("20.00", "USD")
    assert refund.refund_date == timezone.localdate(
        datetime.fromtimestamp(refund_object["created"], tz=UTC)
    )
    assert fake.requests == []
    assert ar_subledger_check() == []
    assert trial_balance().is_balanced
