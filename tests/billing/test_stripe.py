"""Charging invoices through Stripe, against a local fake at the HTTP layer (RELIABILITY.md
B3, F4, F5): one payment per success, declines recorded with their code, and a charge whose
answer was lost is never made again but resolved from Stripe's answer."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone
from djmoney.money import Money

from billing.checks import ar_subledger_check
from billing.enums import InvoiceStatus
from billing.models import Invoice, Payment, PaymentMethod, ProcessorAttempt
from billing.processors import ChargeInProgress, PaymentMethodUnusable
from billing.services.customers import customer_create
from billing.services.invoices import LineInput, invoice_create
from billing.services.payment_methods import payment_method_add, payment_method_remove
from billing.services.payments import AllocationInput
from billing.services.processor_payments import (
    invoice_charge,
    invoice_charge_amount,
    processor_attempts_resolve,
)
from billing.tasks_processors import processor_attempts_resolve_task
from core.exceptions import DomainError, PermissionDeniedError
from core.fx import fx_rate_set
from core.ledger.enums import AccountRole
from core.ledger.models import JournalEntry
from core.ledger.selectors import trial_balance
from tests.billing.fakes.stripe_server import FakeStripe, running_fake_stripe

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.billing.fakes.urls")]
D = Decimal


@pytest.fixture
def fake(settings) -> Iterator[FakeStripe]:
    with running_fake_stripe(timeout_sleep=1.0) as fake:
        settings.STRIPE_SECRET_KEY = "sk_test_fake"
        settings.STRIPE_API_BASE = fake.url
        settings.STRIPE_TIMEOUT_SECONDS = 0.3
        settings.STRIPE_WEBHOOK_SECRET = "whsec_test_secret"
        yield fake


def add_card(actor, customer, n: int = 1) -> PaymentMethod:
    return payment_method_add(
        actor=actor,
        customer_id=customer.pk,
        type="credit_card",
        processor="stripe",
        processor_customer_id=f"cus_Test{customer.pk}",
        processor_token=f"pm_card_{customer.pk}_{n}",
        card_brand="visa",
        card_last4="4242",
        card_exp_month=12,
        card_exp_year=2030,
    )


@pytest.fixture
def card(clerk, customer) -> PaymentMethod:
    return add_card(clerk, customer)


def payments_of(invoice: Invoice) -> list[Payment]:
    return list(Payment.objects.filter(allocations__invoice=invoice))


@pytest.mark.parametrize(
    ("currency", "amount", "minor"),
    [("USD", "35.20", "3520"), ("JPY", "1999", "1999"), ("KWD", "18.600", "18600")],
)
def test_B3_amounts_are_sent_in_minor_units_with_our_idempotency_key(
    fake, clerk, currency, amount, minor, django_capture_on_commit_callbacks
) -> None:
    # given an open invoice in the currency and a saved card
    if currency != "USD":
        fx_rate_set(
            base=currency,
            quote="USD",
            rate=D("0.0067") if currency == "JPY" else D("3.25"),
            rate_date=timezone.localdate(),
        )
    buyer = customer_create(
        actor=clerk, name=f"Buyer {currency}", email="b@x.example", currency=currency
    )
    with django_capture_on_commit_callbacks(execute=False):
        invoice = invoice_create(
            actor=clerk,
            customer_id=buyer.pk,
            issue=True,
            lines=[
                LineInput(description="Plan", quantity=D(1), unit_price=D(amount), tax_rate=D(0))
            ],
        )
    method = add_card(clerk, buyer)
    # when
    attempt = invoice_charge(invoice_id=invoice.pk, payment_method_id=method.pk, actor=clerk)
    # then Stripe was asked once, in minor units, off-session, with our key
    (request,) = fake.charges()
    assert request.params["amount"] == minor
    assert request.params["currency"] == currency.lower()
    assert request.params["off_session"] == "true"
    assert request.params["confirm"] == "true"
    assert request.params["customer"] == f"cus_Test{buyer.pk}"
    assert request.params["payment_method"] == f"pm_card_{buyer.pk}_1"
    assert request.params["metadata"]["backoffice_attempt"] == attempt.idempotency_key
    assert request.params["metadata"]["invoice_id"] == str(invoice.pk)
    assert request.headers["idempotency-key"] == attempt.idempotency_key
    # and the payment is recorded at the exact amount
    attempt.refresh_from_db()
    assert attempt.status == "succeeded"
    assert attempt.amount_minor == int(minor)
    assert attempt.payment.amount == Money(amount, currency)
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    assert trial_balance().is_balanced


def test_success_through_the_api_records_one_payment_and_pays_the_invoice(
    fake, client_for, customer, card, make_invoice
) -> None:
    # given
    invoice = make_invoice("35.20")
    # when
    response = client_for("ar_clerk").post(
        f"/api/billing/invoices/{invoice.pk}/charge", {"payment_method": card.pk}, format="json"
    )
    # then
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["status"], body["amount"], body["currency"]) == ("succeeded", "35.20", "USD")
    assert body["processor_intent_id"].startswith("pi_fake")
    (payment,) = payments_of(invoice)
    assert payment.processor == "stripe"
    assert payment.processor_charge_id == body["processor_charge_id"]
    assert payment.processor_charge_id.startswith("ch_fake")
    assert payment.method == "credit_card"
    assert body["payment"] == payment.pk
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    lines = sorted(payment.ledger_entry.lines.values_list("account__role", "debit", "credit"))
    assert lines == [
        (AccountRole.ACCOUNTS_RECEIVABLE, D(0), D("35.20")),
        (AccountRole.PROCESSOR_CLEARING, D("35.20"), D(0)),
    ]
    assert trial_balance().is_balanced


@pytest.mark.parametrize(
    ("code", "decline_code", "recorded"),
    [
        ("card_declined", None, "card_declined"),
        ("card_declined", "insufficient_funds", "insufficient_funds"),
    ],
)
def test_a_decline_is_402_with_its_code_and_records_no_payment(
    fake, client_for, customer, card, make_invoice, code, decline_code, recorded
) -> None:
    # given
    invoice = make_invoice("100.00")
    entries = JournalEntry.objects.count()
    fake.queue("decline", code=code, decline_code=decline_code)
    # when
    response = client_for("ar_clerk").post(
        f"/api/billing/invoices/{invoice.pk}/charge", {"payment_method": card.pk}, format="json"
    )
    # then
    assert response.status_code == 402, response.json()
    body = response.json()
    assert body["code"] == "card_declined"
    assert body["details"]["decline_code"] == recorded
    assert body["message"]
    attempt = ProcessorAttempt.objects.get()
    assert (attempt.status, attempt.failure_code) == ("failed", recorded)
    assert attempt.processor_intent_id.startswith("pi_fake")
    assert attempt.payment is None
    assert Payment.objects.count() == 0
    assert JournalEntry.objects.count() == entries
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.OPEN


def test_after_a_decline_another_charge_may_be_tried(fake, clerk, customer, card, make_invoice):
    # given a declined attempt
    invoice = make_invoice("20.00")
    fake.queue("decline", decline_code="insufficient_funds")
    assert invoice_charge(invoice_id=invoice.pk, payment_method_id=card.pk, actor=clerk).status == (
        "failed"
    )
    # when tried again
    attempt = invoice_charge(invoice_id=invoice.pk, payment_method_id=card.pk, actor=clerk)
    # then
    assert attempt.status == "succeeded"
    assert len(fake.charges()) == 2
    assert (
        fake.charges()[0].headers["idempotency-key"] != fake.charges()[1].headers["idempotency-key"]
    )
    assert len(payments_of(invoice)) == 1


def test_F4_a_timeout_is_unknown_never_charged_again_and_resolved_once(
    fake, clerk, customer, card, make_invoice
) -> None:
    # given Stripe charges but its answer comes after the client gave up
    invoice = make_invoice("35.20")
    fake.queue("timeout")
    # when
    attempt = invoice_charge(invoice_id=invoice.pk, payment_method_id=card.pk, actor=clerk)
    # then
    assert attempt.status == "unknown"
    assert Payment.objects.count() == 0
    # and a second charge of the invoice is refused while the first is unresolved
    with pytest.raises(ChargeInProgress):
        invoice_charge(invoice_id=invoice.pk, payment_method_id=card.pk, actor=clerk)
    assert len(fake.charges()) == 1
    # when the scheduled check runs, twice
    first = processor_attempts_resolve_task.delay().get()
    second = processor_attempts_resolve_task.delay().get()
    # then the attempt is resolved from Stripe's answer, with one payment
    assert first == {"succeeded": 1}
    assert second == {}
    attempt.refresh_from_db()
    assert attempt.status == "succeeded"
    assert attempt.processor_intent_id.startswith("pi_fake")
    assert len(payments_of(invoice)) == 1
    assert Payment.objects.count() == 1
    assert len(fake.charges()) == 1
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    assert trial_balance().is_balanced


def test_F4_a_server_error_is_unknown_and_resolved_as_failed_when_stripe_has_no_record(
    fake, clerk, customer, card, make_invoice, time_machine
) -> None:
    # given Stripe answered 500 and created nothing
    invoice = make_invoice("10.00")
    fake.queue("server_error")
    attempt = invoice_charge(invoice_id=invoice.pk, payment_method_id=card.pk, actor=clerk)
    assert attempt.status == "unknown"
    # when checked at once: Stripe has nothing yet, the attempt stays unknown
    assert processor_attempts_resolve() == {"unknown": 1}
    # when checked 31 minutes later
    time_machine.move_to(timezone.now() + timedelta(minutes=31))
    assert processor_attempts_resolve() == {"failed": 1}
    # then
    attempt.refresh_from_db()
    assert (attempt.status, attempt.failure_code) == ("failed", "processor_no_record")
    assert Payment.objects.count() == 0
    assert len(fake.charges()) == 1
    # and the invoice can be charged again
    assert (
        invoice_charge(invoice_id=invoice.pk, payment_method_id=card.pk, actor=clerk).status
        == "succeeded"
    )


def test_a_processing_charge_stays_pending_until_stripe_settles_it(
    fake, clerk, customer, card, make_invoice, time_machine
) -> None:
    # given
    invoice = make_invoice("50.00")
    fake.queue("processing")
    attempt = invoice_charge(invoice_id=invoice.pk, payment_method_id=card.pk, actor=clerk)
    assert attempt.status == "pending"
    assert attempt.processor_intent_id
    # when Stripe settles it and the check finds the stale pending attempt
    fake.set_status(attempt.processor_intent_id, "succeeded")
    assert processor_attempts_resolve() == {}  # not stale yet
    time_machine.move_to(timezone.now() + timedelta(minutes=6))
    assert processor_attempts_resolve() == {"succeeded": 1}
    # then
    assert len(payments_of(invoice)) == 1


def test_F5_crash_after_stripe_charged_is_recorded_once_by_the_scheduled_check(
    fake, clerk, customer, card, make_invoice, monkeypatch, time_machine
) -> None:
    # given the process dies after Stripe charged, inside the recording transaction
    invoice = make_invoice("35.20")

    def die(**kwargs):
        raise SystemExit("killed")

    monkeypatch.setattr("billing.services.processor_payments.payment_record", die)
    with pytest.raises(SystemExit):
        invoice_charge(invoice_id=invoice.pk, payment_method_id=card.pk, actor=clerk)
    monkeypatch.undo()
    attempt = ProcessorAttempt.objects.get()
    assert (attempt.status, attempt.processor_intent_id) == ("pending", "")
    assert Payment.objects.count() == 0
    # when the scheduled check runs (the attempt is stale) twice
    time_machine.move_to(timezone.now() + timedelta(minutes=6))
    assert processor_attempts_resolve() == {"succeeded": 1}
    assert processor_attempts_resolve() == {}
    # then exactly one payment, and Stripe was charged once
    assert len(payments_of(invoice)) == 1
    assert len(fake.charges()) == 1
    assert trial_balance().is_balanced


def test_F5_crash_that_lost_even_the_attempt_is_rebuilt_from_the_webhook(
    fake, clerk, customer, card, make_invoice, client
) -> None:
    # given the charge ran inside a caller's transaction that then died: no attempt row left
    import json

    from tests.billing.fakes.stripe_server import intent_event, sign

    invoice = make_invoice("35.20")
    with pytest.raises(SystemExit), transaction.atomic():
        invoice_charge(invoice_id=invoice.pk, payment_method_id=card.pk, actor=clerk)
        raise SystemExit("killed")
    assert ProcessorAttempt.objects.count() == 0
    (intent,) = fake.intents.values()
    # when Stripe's webhook arrives (twice)
    body = json.dumps(intent_event(intent, "payment_intent.succeeded", event_id="evt_f5"))
    for _ in range(2):
        response = client.post(
            "/api/billing/webhooks/stripe",
            body,
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE=sign(body, "whsec_test_secret"),
        )
        assert response.status_code == 200
    # then the attempt is rebuilt and exactly one payment recorded
    attempt = ProcessorAttempt.objects.get()
    assert attempt.status == "succeeded"
    assert attempt.idempotency_key == intent["metadata"]["backoffice_attempt"]
    assert len(payments_of(invoice)) == 1
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID


def test_a_removed_or_foreign_payment_method_is_refused(fake, clerk, customer, card, make_invoice):
    invoice = make_invoice("10.00")
    other = customer_create(actor=clerk, name="Other", email="o@x.example", currency="USD")
    foreign = add_card(clerk, other)
    with pytest.raises(PaymentMethodUnusable):
        invoice_charge(invoice_id=invoice.pk, payment_method_id=foreign.pk, actor=clerk)
    payment_method_remove(actor=clerk, payment_method_id=card.pk)
    with pytest.raises(PaymentMethodUnusable):
        invoice_charge(invoice_id=invoice.pk, payment_method_id=card.pk, actor=clerk)
    assert fake.charges() == []
    assert ProcessorAttempt.objects.count() == 0


def test_a_paid_invoice_is_not_charged(fake, clerk, customer, card, make_invoice) -> None:
    invoice = make_invoice("10.00")
    invoice_charge(invoice_id=invoice.pk, payment_method_id=card.pk, actor=clerk)
    with pytest.raises(Exception, match="nothing to charge"):
        invoice_charge(invoice_id=invoice.pk, payment_method_id=card.pk, actor=clerk)
    assert len(fake.charges()) == 1


def test_a_role_without_the_right_cannot_charge(fake, make_user, customer, card, make_invoice):
    invoice = make_invoice("10.00")
    with pytest.raises(PermissionDeniedError):
        invoice_charge(invoice_id=invoice.pk, payment_method_id=card.pk, actor=make_user("auditor"))
    assert fake.charges() == []


@pytest.mark.parametrize(
    ("role", "expected"),
    [("finance_admin", 201), ("ar_clerk", 201), ("controller", 403), ("auditor", 403)],
)
def test_charge_authorisation(fake, client_for, customer, card, make_invoice, role, expected):
    invoice = make_invoice("10.00")
    response = client_for(role).post(
        f"/api/billing/invoices/{invoice.pk}/charge", {"payment_method": card.pk}, format="json"
    )
    assert response.status_code == expected


def test_charge_with_an_integration_token(fake, integration_client, customer, card, make_invoice):
    invoice = make_invoice("10.00")
    response = integration_client.post(
        f"/api/billing/invoices/{invoice.pk}/charge",
        {"payment_method": card.pk},
        format="json",
        HTTP_IDEMPOTENCY_KEY="charge-1",
    )
    assert response.status_code == 201, response.json()
    # the same Idempotency-Key replays the answer without charging again
    again = integration_client.post(
        f"/api/billing/invoices/{invoice.pk}/charge",
        {"payment_method": card.pk},
        format="json",
        HTTP_IDEMPOTENCY_KEY="charge-1",
    )
    assert again.status_code == 201
    assert again.json() == response.json()
    assert len(fake.charges()) == 1


def test_without_stripe_configured_the_charge_is_refused_before_anything(
    settings, clerk, customer, card, make_invoice
) -> None:
    settings.STRIPE_SECRET_KEY = ""
    invoice = make_invoice("10.00")
    with pytest.raises(Exception, match="not configured"):
        invoice_charge(invoice_id=invoice.pk, payment_method_id=card.pk, actor=clerk)
    assert ProcessorAttempt.objects.count() == 0


def test_payment_with_a_saved_payment_method_charges_through_the_processor(
    fake, integration_client, customer, card, make_invoice
) -> None:
    # given an open invoice and the customer's saved card
    invoice = make_invoice("35.20")
    # when an integration posts a payment naming the card
    response = integration_client.post(
        "/api/billing/payments",
        {
            "customer": customer.pk,
            "amount": "35.20",
            "currency": "USD",
            "method": "credit_card",
            "payment_method": card.pk,
            "allocations": [{"invoice": invoice.pk, "amount": "35.20"}],
        },
        format="json",
    )
    # then Stripe was charged once and the payment recorded against the invoice
    assert response.status_code == 201, response.json()
    (payment,) = payments_of(invoice)
    assert response.json()["id"] == payment.pk
    assert payment.processor == "stripe"
    assert len(fake.charges()) == 1


def test_payment_with_a_saved_method_must_charge_the_amount_due(
    fake, integration_client, customer, card, make_invoice
) -> None:
    invoice = make_invoice("35.20")
    response = integration_client.post(
        "/api/billing/payments",
        {
            "customer": customer.pk,
            "amount": "10.00",
            "currency": "USD",
            "method": "credit_card",
            "payment_method": card.pk,
            "allocations": [{"invoice": invoice.pk, "amount": "10.00"}],
        },
        format="json",
    )
    assert response.status_code == 400
    assert "amount due" in response.json()["message"]
    assert payments_of(invoice) == []
    assert fake.charges() == []


# --- Charging part of what is due (installments) -----------------------------------------------


def test_a_partial_charge_records_a_payment_of_that_amount_on_the_invoice(
    fake, clerk, customer, card, make_invoice
) -> None:
    # given an open invoice of 100.00
    invoice = make_invoice("100.00")
    # when 40.00 of it is charged
    attempt = invoice_charge_amount(
        invoice_id=invoice.pk, payment_method_id=card.pk, amount=D("40.00"), actor=clerk
    )
    # then Stripe was asked for 40.00 and the payment is allocated to the invoice
    (request,) = fake.charges()
    assert request.params["amount"] == "4000"
    assert (attempt.status, attempt.amount) == ("succeeded", Money("40.00", "USD"))
    assert attempt.allocations == [{"invoice": str(invoice.pk), "amount": "40.00"}]
    (payment,) = payments_of(invoice)
    assert payment.amount == Money("40.00", "USD")
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_due) == (InvoiceStatus.OPEN, Money("60.00", "USD"))
    assert ar_subledger_check() == []
    assert trial_balance().is_balanced


def test_a_partial_charge_allocated_over_two_invoices(
    fake, clerk, customer, card, make_invoice
) -> None:
    # given two open invoices
    first, second = make_invoice("30.00"), make_invoice("50.00")
    # when 30.00 + 20.00 are charged at once
    attempt = invoice_charge_amount(
        invoice_id=first.pk,
        payment_method_id=card.pk,
        amount=D("50.00"),
        actor=clerk,
        allocations=[
            AllocationInput(invoice_id=first.pk, amount=D("30.00")),
            AllocationInput(invoice_id=second.pk, amount=D("20.00")),
        ],
    )
    # then one charge of 50.00, one payment split as asked
    assert [r.params["amount"] for r in fake.charges()] == ["5000"]
    assert sorted(
        (a.invoice_id, a.amount.amount) for a in attempt.payment.allocations.all()
    ) == sorted([(first.pk, D("30.00")), (second.pk, D("20.00"))])
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.amount_due) == (InvoiceStatus.PAID, Money("30.00", "USD"))
    assert ar_subledger_check() == []


@pytest.mark.parametrize("amount", ["100.01", "0", "-1.00", "10.001"])
def test_a_partial_charge_outside_what_is_due_is_refused_and_nothing_is_sent(
    fake, clerk, customer, card, make_invoice, amount
) -> None:
    # given
    invoice = make_invoice("100.00")
    # when / then
    with pytest.raises(DomainError):
        invoice_charge_amount(
            invoice_id=invoice.pk, payment_method_id=card.pk, amount=D(amount), actor=clerk
        )
    assert ProcessorAttempt.objects.count() == 0
    assert fake.charges() == []
    invoice.refresh_from_db()
    assert invoice.amount_due == Money("100.00", "USD")


def test_a_partial_charge_may_not_allocate_to_another_customers_invoice(
    fake, clerk, customer, card, make_invoice
) -> None:
    # given an invoice of another customer
    invoice = make_invoice("100.00")
    other = customer_create(actor=clerk, name="Other", email="o@x.example", currency="USD")
    foreign = make_invoice("10.00", on=other)
    # when / then
    with pytest.raises(DomainError):
        invoice_charge_amount(
            invoice_id=invoice.pk,
            payment_method_id=card.pk,
            amount=D("20.00"),
            actor=clerk,
            allocations=[
                AllocationInput(invoice_id=invoice.pk, amount=D("10.00")),
                AllocationInput(invoice_id=foreign.pk, amount=D("10.00")),
            ],
        )
    assert ProcessorAttempt.objects.count() == 0
    assert fake.charges() == []


def test_a_partial_charge_with_a_key_is_made_once(fake, clerk, customer, card, make_invoice):
    # given a charge made with a key
    invoice = make_invoice("100.00")
    fake.queue("decline")
    kwargs = {
        "invoice_id": invoice.pk,
        "payment_method_id": card.pk,
        "amount": D("40.00"),
        "actor": clerk,
        "idempotency_key": "bo_test_key_1",
    }
    first = invoice_charge_amount(**kwargs)
    assert first.status == "failed"
    # when the same key is used again
    again = invoice_charge_amount(**kwargs)
    # then the first attempt comes back and Stripe was asked once
    assert again.pk == first.pk
    assert again.status == "failed"
    assert len(fake.charges()) == 1
    assert fake.charges()[0].headers["idempotency-key"] == "bo_test_key_1"
    assert ProcessorAttempt.objects.count() == 1
