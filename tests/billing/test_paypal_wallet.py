"""A saved PayPal wallet (Payment Method Tokens v3), against the local PayPal fake at the HTTP
layer (issue 14 section 1): the customer approves saving it at PayPal and it is kept from
PayPal's word, not the browser's; autopay charges it without the payer (an order on the
payment token), once per invoice and try, soft refusals retried, hard ones not; a lost answer
is asked again under the same request id; removing it deletes the token at PayPal."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.db.models import F
from django.utils import timezone
from rest_framework.test import APIClient

from billing.enums import InvoiceStatus
from billing.models import InvoiceAutopay, Payment, PaymentMethod, ProcessorAttempt
from billing.models.autopay import AutopayStatus, autopay_key
from billing.selectors import payment_method_chargeable
from billing.services.autopay import autopay_charge, autopay_run
from billing.services.customers import customer_create
from billing.services.payment_methods import (
    payment_method_remove,
    payment_methods_processor_detach_sweep,
)
from billing.services.processor_payments import invoice_charge, processor_attempts_resolve
from billing.services.wallet_setup import (
    WalletNotApproved,
    wallet_setup_complete,
    wallet_setup_start,
)
from core.fx import fx_rate_set
from tests.billing.fakes import paypal_server
from tests.billing.fakes.paypal_server import FakePayPal, payment_token_event, running_fake_paypal
from tests.billing.test_autopay import assert_books_agree, issue
from tests.billing.test_autopay_batch import row_of

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.billing.fakes.urls")]
D = Decimal
RETURN = "https://billing.example/portal/methods/paypal/return"
CANCEL = "https://billing.example/portal/home"


@pytest.fixture
def fake(settings) -> Iterator[FakePayPal]:
    with running_fake_paypal(timeout_sleep=1.5) as fake:
        settings.PAYPAL_CLIENT_ID = paypal_server.CLIENT_ID
        settings.PAYPAL_CLIENT_SECRET = paypal_server.CLIENT_SECRET
        settings.PAYPAL_API_BASE = fake.url
        settings.PAYPAL_TIMEOUT_SECONDS = 0.5
        settings.PAYPAL_WEBHOOK_ID = paypal_server.WEBHOOK_ID
        yield fake


def autopay_customer(actor, name: str = "Wallet Co"):
    return customer_create(
        actor=actor,
        name=name,
        email=f"ap@{name.split()[0].lower()}.example",
        currency="USD",
        autopay=True,
        time_zone="Europe/London",
    )


def save_wallet(fake: FakePayPal, customer, email: str = "payer@wallet.example") -> PaymentMethod:
    url = wallet_setup_start(customer_id=customer.pk, return_url=RETURN, cancel_url=CANCEL)
    setup_id = url.rsplit("=", 1)[-1]
    fake.approve_setup(setup_id, email=email)
    return wallet_setup_complete(customer_id=customer.pk, setup_token_id=setup_id)


# --- saving the wallet ---------------------------------------------------------------------------


def test_a_wallet_approved_at_paypal_is_saved_once_from_paypals_word(fake, finance_admin) -> None:
    customer = autopay_customer(finance_admin)
    # when the customer is sent to PayPal
    url = wallet_setup_start(customer_id=customer.pk, return_url=RETURN, cancel_url=CANCEL)
    # then the setup token names our customer and our return addresses
    (request,) = fake.calls("POST", "/v3/vault/setup-tokens")
    wallet = request.body["payment_source"]["paypal"]
    assert wallet["usage_type"] == "MERCHANT"
    assert wallet["experience_context"]["return_url"] == RETURN
    assert request.body["customer"] == {"merchant_customer_id": f"bo-customer-{customer.pk}"}
    assert url.startswith("https://www.sandbox.paypal.com/agreements/approve")
    setup_id = url.rsplit("=", 1)[-1]
    # and coming back before approving saves nothing
    with pytest.raises(WalletNotApproved):
        wallet_setup_complete(customer_id=customer.pk, setup_token_id=setup_id)
    assert not PaymentMethod.objects.filter(customer=customer).exists()
    # when the payer approves and comes back, twice (a reload)
    fake.approve_setup(setup_id, email="payer@wallet.example")
    first = wallet_setup_complete(customer_id=customer.pk, setup_token_id=setup_id)
    again = wallet_setup_complete(customer_id=customer.pk, setup_token_id=setup_id)
    # then one wallet, the default, chargeable, its token exchanged once at PayPal
    assert first.pk == again.pk
    (method,) = PaymentMethod.objects.filter(customer=customer)
    assert (method.processor, method.processor_account, method.is_default) == (
        "paypal",
        "payer@wallet.example",
        True,
    )
    assert method.processor_token in fake.payment_tokens
    assert (
        method.processor_customer_id
        == fake.payment_tokens[method.processor_token]["customer"]["id"]
    )
    assert str(method) == "PayPal payer@wallet.example"
    assert payment_method_chargeable(customer_id=customer.pk) == method
    assert len(fake.payment_tokens) == 1


def test_another_customers_approval_is_refused(fake, finance_admin) -> None:
    mine = autopay_customer(finance_admin, "Mine Ltd")
    theirs = autopay_customer(finance_admin, "Theirs Ltd")
    url = wallet_setup_start(customer_id=theirs.pk, return_url=RETURN, cancel_url=CANCEL)
    setup_id = url.rsplit("=", 1)[-1]
    fake.approve_setup(setup_id)
    # a return address carrying someone else's approval saves nothing for me
    with pytest.raises(WalletNotApproved):
        wallet_setup_complete(customer_id=mine.pk, setup_token_id=setup_id)
    with pytest.raises(WalletNotApproved):
        wallet_setup_complete(customer_id=mine.pk, setup_token_id="5C999999VB2781612")
    assert not PaymentMethod.objects.exists()
    assert fake.calls("POST", "/v3/vault/payment-tokens") == []


def test_the_token_created_webhook_saves_a_wallet_whose_return_was_lost(
    fake, finance_admin
) -> None:
    customer = autopay_customer(finance_admin)
    method = save_wallet(fake, customer)
    token = fake.payment_tokens[method.processor_token]
    # the exchange happened but our write was lost: the wallet is gone here
    method.delete()
    event = payment_token_event(token, event_id="WH-VAULT-1")
    body = json.dumps(event)

    def deliver():
        extra = {f"HTTP_{k.replace('-', '_')}": v for k, v in fake.sign(event).items()}
        return APIClient().generic(
            "POST", "/api/billing/webhooks/paypal", body, content_type="application/json", **extra
        )

    assert deliver().status_code == 200
    assert deliver().status_code == 200
    (saved,) = PaymentMethod.objects.filter(customer=customer)
    assert saved.processor_token == token["id"]
    # a token of someone not ours is left alone
    stranger = dict(token, id="9999tkn8451t", customer={"id": "c1", "merchant_customer_id": "x"})
    other = payment_token_event(stranger, event_id="WH-VAULT-2")
    extra = {f"HTTP_{k.replace('-', '_')}": v for k, v in fake.sign(other).items()}
    response = APIClient().generic(
        "POST",
        "/api/billing/webhooks/paypal",
        json.dumps(other),
        content_type="application/json",
        **extra,
    )
    assert response.status_code == 200
    assert PaymentMethod.objects.count() == 1


# --- charging it -------------------------------------------------------------------------------


def test_autopay_charges_the_wallet_once_without_the_payer(fake, finance_admin) -> None:
    customer = autopay_customer(finance_admin)
    wallet = save_wallet(fake, customer)
    invoice = issue(finance_admin, customer, "80.00")
    # when the task runs twice and the periodic run as well
    assert autopay_charge(invoice_id=invoice.pk) == "succeeded"
    assert autopay_charge(invoice_id=invoice.pk) == "not_due"
    autopay_run()
    # then one order on the payment token, merchant-initiated, keyed by invoice and try
    (charge,) = fake.wallet_charges()
    source = charge.body["payment_source"]["paypal"]
    assert source["vault_id"] == wallet.processor_token
    assert source["stored_credential"]["payment_initiator"] == "MERCHANT"
    assert charge.headers["paypal-request-id"] == autopay_key(invoice.pk, 1)
    unit = charge.body["purchase_units"][0]
    assert unit["amount"] == {"currency_code": "USD", "value": "80.00"}
    assert unit["custom_id"] == autopay_key(invoice.pk, 1)
    # and one payment under the capture's id; the invoice paid, the books agree
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    (payment,) = Payment.objects.all()
    order = fake.orders[ProcessorAttempt.objects.get().processor_intent_id]
    capture = order["purchase_units"][0]["payments"]["captures"][0]
    assert (payment.processor, payment.processor_charge_id) == ("paypal", capture["id"])
    assert row_of(invoice).status == AutopayStatus.PAID
    assert_books_agree()


def test_a_soft_refusal_is_retried_and_a_hard_one_stops_and_tells_the_customer(
    fake, finance_admin, django_capture_on_commit_callbacks
) -> None:
    soft = autopay_customer(finance_admin, "Soft Co")
    hard = autopay_customer(finance_admin, "Hard Co")
    save_wallet(fake, soft)
    save_wallet(fake, hard)
    # the soft one first: instrument declined, then paid on the retry day
    fake.queue("decline")
    invoice = issue(finance_admin, soft, "80.00")
    assert autopay_charge(invoice_id=invoice.pk) == "failed"
    row = row_of(invoice)
    assert (row.status, row.last_failure_code) == (AutopayStatus.SCHEDULED, "instrument_declined")
    assert autopay_run(now=row.next_attempt_at).outcomes == {"succeeded": 1}
    assert [c.headers["paypal-request-id"] for c in fake.wallet_charges()] == [
        autopay_key(invoice.pk, 1),
        autopay_key(invoice.pk, 2),
    ]
    # the hard one: the payer's account is closed; no retry, the customer emailed the link
    fake.queue("decline:PAYER_ACCOUNT_LOCKED_OR_CLOSED")
    closed = issue(finance_admin, hard, "80.00")
    with django_capture_on_commit_callbacks(execute=True):
        assert autopay_charge(invoice_id=closed.pk) == "failed"
    row = row_of(closed)
    assert (row.status, row.next_attempt_at) == (AutopayStatus.STOPPED, None)
    (email,) = [m for m in mail.outbox if "could not collect" in m.subject]
    assert email.to == ["ap@hard.example"]
    assert "payer_account_locked_or_closed" in email.body
    autopay_run(now=timezone.now() + timedelta(days=30))
    assert len(fake.wallet_charges()) == 3
    assert_books_agree()


def test_a_lost_answer_is_asked_again_under_the_same_request_id_and_pays_once(
    fake, finance_admin
) -> None:
    customer = autopay_customer(finance_admin)
    save_wallet(fake, customer)
    invoice = issue(finance_admin, customer, "80.00")
    # PayPal charged, but its answer came after we gave up
    fake.queue("timeout")
    assert autopay_charge(invoice_id=invoice.pk) == "unknown"
    assert Payment.objects.count() == 0
    # billing's check asks again with the same request id: PayPal answers the first order
    assert processor_attempts_resolve() == {"succeeded": 1}
    requests = fake.wallet_charges()
    assert len(requests) == 2
    assert {r.headers["paypal-request-id"] for r in requests} == {autopay_key(invoice.pk, 1)}
    assert len(fake.orders) == 1
    assert Payment.objects.count() == 1
    later = timezone.now() + timedelta(minutes=20)
    assert autopay_run(now=later).outcomes == {"paid": 1}
    assert_books_agree()


def test_an_answer_lost_past_paypals_request_id_window_is_left_for_a_clerk(
    fake, finance_admin
) -> None:
    customer = autopay_customer(finance_admin)
    save_wallet(fake, customer)
    invoice = issue(finance_admin, customer, "80.00")
    fake.queue("timeout")
    assert autopay_charge(invoice_id=invoice.pk) == "unknown"
    ProcessorAttempt.objects.update(created_at=F("created_at") - timedelta(hours=4))
    # asking again could charge twice: nothing is sent, the attempt stays unknown
    assert processor_attempts_resolve() == {"unknown": 1}
    assert len(fake.wallet_charges()) == 1
    assert Payment.objects.count() == 0


def test_a_pending_capture_is_paid_when_paypal_completes_it(fake, finance_admin) -> None:
    customer = autopay_customer(finance_admin)
    save_wallet(fake, customer)
    invoice = issue(finance_admin, customer, "80.00")
    fake.queue("pending")
    assert autopay_charge(invoice_id=invoice.pk) == "pending"
    attempt = ProcessorAttempt.objects.get()
    order = fake.orders[attempt.processor_intent_id]
    order["purchase_units"][0]["payments"]["captures"][0]["status"] = "COMPLETED"
    ProcessorAttempt.objects.update(created_at=F("created_at") - timedelta(minutes=6))
    assert processor_attempts_resolve() == {"succeeded": 1}
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID


def test_a_clerk_may_charge_the_wallet_and_paypal_not_configured_spends_no_try(
    fake, finance_admin, settings
) -> None:
    customer = autopay_customer(finance_admin)
    wallet = save_wallet(fake, customer)
    invoice = issue(finance_admin, customer, "12.50")
    settings.PAYPAL_CLIENT_ID = ""
    assert autopay_run().outcomes == {"not_configured": 1}
    assert row_of(invoice).tries == 0
    assert fake.wallet_charges() == []
    settings.PAYPAL_CLIENT_ID = paypal_server.CLIENT_ID
    InvoiceAutopay.objects.update(status=AutopayStatus.CLOSED)
    attempt = invoice_charge(
        invoice_id=invoice.pk, payment_method_id=wallet.pk, actor=finance_admin
    )
    assert attempt.status == "succeeded"
    assert len(fake.wallet_charges()) == 1


# --- removing it -------------------------------------------------------------------------------


def test_a_removed_wallet_is_deleted_at_paypal_and_never_charged(
    fake, finance_admin, django_capture_on_commit_callbacks
) -> None:
    customer = autopay_customer(finance_admin)
    wallet = save_wallet(fake, customer)
    token = wallet.processor_token
    with django_capture_on_commit_callbacks(execute=True):
        payment_method_remove(actor=finance_admin, payment_method_id=wallet.pk)
    assert token not in fake.payment_tokens
    assert fake.calls("DELETE", f"/v3/vault/payment-tokens/{token}")
    wallet.refresh_from_db()
    assert wallet.processor_detached_at is not None
    assert payment_methods_processor_detach_sweep() == {"detached": 0, "refused": 0, "pending": 0}
    assert payment_method_chargeable(customer_id=customer.pk) is None


def test_a_currency_paypal_does_not_take_is_refused_before_anything_is_sent(
    fake, finance_admin
) -> None:
    fx_rate_set(base="KWD", quote="USD", rate=D("3.25"), rate_date=timezone.localdate())
    customer = customer_create(
        actor=finance_admin, name="Kuwait Co", email="ap@kw.example", currency="KWD", autopay=True
    )
    save_wallet(fake, customer)
    invoice = issue(finance_admin, customer, "18.600")
    assert autopay_charge(invoice_id=invoice.pk) == "failed"
    assert fake.wallet_charges() == []
    row = row_of(invoice)
    assert (row.status, row.last_failure_code) == (AutopayStatus.STOPPED, "currency_not_supported")
