"""Paying from the hosted invoice page (issue 14 section 2), against the local fakes of Stripe
(Checkout), PayPal (Orders v2 approval) and Coinbase Commerce (hosted charge).

The page only ever posts the way chosen (and an amount, where allowed) to us; we answer with
the processor's page. The payment is recorded from the processor's word: Stripe's and
Coinbase's signed webhooks (or the scheduled check), PayPal's answer to our capture."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django.utils import timezone

from billing.enums import InvoiceStatus
from billing.models import Invoice, Payment, ProcessorAttempt
from billing.models.processors import AttemptStatus
from billing.services.links import invoice_links_revoke, invoice_url
from billing.services.processor_payments import processor_attempts_resolve
from core.system_settings import PayPageSettings
from tests.billing.fakes import coinbase_server, paypal_server
from tests.billing.fakes.coinbase_server import FakeCoinbase, charge_event, running_fake_coinbase
from tests.billing.fakes.paypal_server import FakePayPal, running_fake_paypal
from tests.billing.fakes.stripe_server import FakeStripe, running_fake_stripe, sign

pytestmark = pytest.mark.django_db
D = Decimal
STRIPE_WEBHOOK = "/api/billing/webhooks/stripe"
COINBASE_WEBHOOK = "/api/billing/webhooks/coinbase"


@pytest.fixture
def stripe(settings) -> Iterator[FakeStripe]:
    with running_fake_stripe() as fake:
        settings.STRIPE_SECRET_KEY = "sk_test_fake"
        settings.STRIPE_API_BASE = fake.url
        settings.STRIPE_TIMEOUT_SECONDS = 2
        settings.STRIPE_WEBHOOK_SECRET = "whsec_test_secret"
        settings.HOSTED_CHECKOUT_ORIGINS = [fake.url]
        yield fake


@pytest.fixture
def paypal(settings) -> Iterator[FakePayPal]:
    with running_fake_paypal() as fake:
        settings.PAYPAL_CLIENT_ID = paypal_server.CLIENT_ID
        settings.PAYPAL_CLIENT_SECRET = paypal_server.CLIENT_SECRET
        settings.PAYPAL_API_BASE = fake.url
        settings.PAYPAL_TIMEOUT_SECONDS = 2
        settings.PAYPAL_WEBHOOK_ID = paypal_server.WEBHOOK_ID
        yield fake


@pytest.fixture
def coinbase(settings) -> Iterator[FakeCoinbase]:
    with running_fake_coinbase() as fake:
        settings.COINBASE_COMMERCE_API_KEY = coinbase_server.API_KEY
        settings.COINBASE_COMMERCE_API_BASE = fake.url
        settings.COINBASE_COMMERCE_TIMEOUT_SECONDS = 2
        settings.COINBASE_COMMERCE_WEBHOOK_SECRET = "cb-secret"
        yield fake


@pytest.fixture
def invoice(make_invoice) -> Invoice:
    return make_invoice("300.00", "200.00")


def page_of(invoice: Invoice) -> str:
    return urlsplit(invoice_url(invoice_id=invoice.pk)).path


def pay(client: Client, page: str, way: str, **extra: str):
    client.get(page)  # the page sets the CSRF cookie its form carries (when it has a form)
    cookie = client.cookies.get("csrftoken")
    token = {"csrfmiddlewaretoken": cookie.value} if cookie else {}
    return client.post(f"{page}pay", {"way": way, **token, **extra})


def deliver(client: Client, event: dict) -> None:
    body = json.dumps(event)
    answer = client.post(
        STRIPE_WEBHOOK,
        body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=sign(body, "whsec_test_secret"),
    )
    assert answer.status_code == 200, answer.content


def paid_total(invoice: Invoice) -> Decimal:
    return sum(
        (p.amount.amount for p in Payment.objects.filter(allocations__invoice=invoice)), D(0)
    )


def test_card_payment_goes_through_stripe_checkout_and_is_recorded_from_the_webhook(
    stripe, invoice
) -> None:
    browser = Client(enforce_csrf_checks=True)
    page = page_of(invoice)
    # given the page: one form, a button per way, no script, forms only to us and Stripe
    html = browser.get(page).content.decode()
    assert f'action="{page}pay"' in html
    assert 'value="card"' in html
    assert "<script" not in html
    csp = browser.get(page)["Content-Security-Policy"]
    assert f"form-action 'self' {stripe.url};" in csp
    # when the payer chooses card
    answer = pay(browser, page, "card")
    # then they are sent to Stripe's page for what is due, with nothing of a card sent to us
    assert answer.status_code == 303
    session = next(iter(stripe.sessions.values()))
    assert answer["Location"] == session["url"]
    assert session["amount_total"] == 50000
    assert session["currency"] == "usd"
    assert session["success_url"].endswith(f"{page}?paying=card")
    attempt = ProcessorAttempt.objects.get(invoice=invoice)
    assert attempt.status == AttemptStatus.PENDING
    assert attempt.checkout_id == session["id"]
    assert session["_intent_data"]["metadata"]["backoffice_attempt"] == attempt.idempotency_key
    # when they come back before Stripe's webhook: the page says processing, no pay buttons
    back = browser.get(f"{page}?paying=card").content.decode()
    assert "being confirmed by Stripe" in back
    assert 'value="card"' not in back
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.OPEN
    assert paid_total(invoice) == 0
    # when Stripe's events arrive (twice: Stripe retries)
    stripe.session_pay(session["id"])
    for event in stripe.events_sent * 2:
        deliver(browser, event)
    # then one payment of what was due, and the page says paid
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    assert paid_total(invoice) == D("500.00")
    assert Payment.objects.count() == 1
    attempt.refresh_from_db()
    assert attempt.status == AttemptStatus.SUCCEEDED
    assert attempt.processor_intent_id.startswith("pi_fake")
    final = browser.get(page).content.decode()
    assert "Paid" in final
    assert 'value="card"' not in final


def test_choosing_again_continues_the_checkout_and_another_way_closes_it(
    stripe, paypal, invoice
) -> None:
    browser = Client()
    page = page_of(invoice)
    first = pay(browser, page, "card")
    # the page offers to continue the unfinished checkout
    html = browser.get(page).content.decode()
    assert "Continue with Card" in html
    assert first["Location"] in html
    # the same way again: the same Stripe page, no second session
    again = pay(browser, page, "card")
    assert again["Location"] == first["Location"]
    assert len(stripe.sessions) == 1
    # another way: Stripe's session is expired first, then a PayPal order is made
    other = pay(browser, page, "paypal")
    assert other.status_code == 303
    assert "checkoutnow?token=" in other["Location"]
    session = next(iter(stripe.sessions.values()))
    assert session["status"] == "expired"
    card, pp = ProcessorAttempt.objects.order_by("pk")
    assert (card.status, card.failure_code) == (AttemptStatus.FAILED, "checkout_withdrawn")
    assert pp.processor == "paypal"
    assert pp.status == AttemptStatus.PENDING


def test_a_paid_checkout_cannot_be_replaced_and_is_recorded_once(stripe, paypal, invoice) -> None:
    browser = Client()
    page = page_of(invoice)
    pay(browser, page, "card")
    session = next(iter(stripe.sessions.values()))
    stripe.session_pay(session["id"])  # paid at Stripe, its webhook not yet here
    # choosing PayPal now: the checkout is complete, so its payment is recorded, no order made
    answer = pay(browser, page, "paypal")
    assert answer.status_code == 409
    assert "just been confirmed" in answer.content.decode()
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    assert paid_total(invoice) == D("500.00")
    assert paypal.order_creations() == []
    for event in stripe.events_sent:
        deliver(browser, event)
    assert Payment.objects.count() == 1


def test_a_lost_webhook_is_made_good_by_the_scheduled_check(stripe, invoice) -> None:
    pay(Client(), page_of(invoice), "card")
    session = next(iter(stripe.sessions.values()))
    stripe.session_pay(session["id"])  # the webhook never arrives
    processor_attempts_resolve(now=timezone.now() + timedelta(minutes=6))
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    assert Payment.objects.count() == 1


def test_an_expired_checkout_fails_its_attempt_and_the_page_offers_the_ways_again(
    stripe, invoice
) -> None:
    browser = Client()
    page = page_of(invoice)
    pay(browser, page, "card")
    session = next(iter(stripe.sessions.values()))
    session["status"] = "expired"
    deliver(
        browser,
        {
            "id": "evt_expired_1",
            "object": "event",
            "type": "checkout.session.expired",
            "data": {"object": {k: v for k, v in session.items() if not k.startswith("_")}},
        },
    )
    attempt = ProcessorAttempt.objects.get()
    assert (attempt.status, attempt.failure_code) == (AttemptStatus.FAILED, "checkout_expired")
    html = browser.get(page).content.decode()
    assert 'value="card"' in html
    assert "Continue with" not in html


@pytest.mark.parametrize(
    ("way", "amount", "status", "message"),
    [
        ("bitcoin", "", 400, "not offered"),
        ("", "", 400, "not offered"),
        ("card", "abc", 400, "is not an amount"),
        ("card", "-5", 400, "more than zero"),
        ("card", "NaN", 400, "more than zero"),
        ("card", "1e999999", 400, ""),
        ("card", "100.00", 400, "paid in full"),
        ("card", "0.001", 400, ""),
    ],
)
def test_bad_choices_get_the_page_with_the_reason_and_open_nothing(
    stripe, invoice, way, amount, status, message
) -> None:
    browser = Client()
    page = page_of(invoice)
    answer = pay(browser, page, way, **({"amount": amount} if amount else {}))
    assert answer.status_code == status
    assert message in answer.content.decode()
    assert 'role="alert"' in answer.content.decode()
    assert ProcessorAttempt.objects.count() == 0
    assert stripe.sessions == {}


def test_part_payment_where_the_policy_allows_it(stripe, invoice, settings) -> None:
    settings.SYSTEM_SETTINGS = dataclasses.replace(
        settings.SYSTEM_SETTINGS,
        pay_page=PayPageSettings(partial_payments=True, minimum_partial=D("10")),
    )
    browser = Client()
    page = page_of(invoice)
    assert 'name="amount"' in browser.get(page).content.decode()
    # more than due, and under the minimum, are refused
    assert pay(browser, page, "card", amount="500.01").status_code == 400
    assert pay(browser, page, "card", amount="9.99").status_code == 400
    # a part is charged and recorded as such
    assert pay(browser, page, "card", amount="120.50").status_code == 303
    session = next(iter(stripe.sessions.values()))
    assert session["amount_total"] == 12050
    stripe.session_pay(session["id"])
    for event in stripe.events_sent:
        deliver(browser, event)
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.OPEN
    assert invoice.amount_due.amount == D("379.50")


def test_too_many_checkouts_in_an_hour_get_429(stripe, invoice, settings) -> None:
    settings.SYSTEM_SETTINGS = dataclasses.replace(
        settings.SYSTEM_SETTINGS, pay_page=PayPageSettings(checkouts_per_hour=2)
    )
    browser = Client()
    page = page_of(invoice)
    assert pay(browser, page, "card").status_code == 303
    ProcessorAttempt.objects.update(created_at=timezone.now() - timedelta(minutes=40))
    # an older unfinished one is not continued: it is closed and a new one opened
    assert pay(browser, page, "card").status_code == 303
    ProcessorAttempt.objects.update(created_at=timezone.now() - timedelta(minutes=40))
    answer = pay(browser, page, "card")
    assert answer.status_code == 429
    assert "Too many payments" in answer.content.decode()
    assert len(stripe.sessions) == 2


def test_a_charge_in_flight_without_the_payer_shows_processing_and_takes_no_checkout(
    stripe, invoice
) -> None:
    # an autopay or staff charge whose answer is awaited
    ProcessorAttempt.objects.create(
        processor="stripe",
        customer=invoice.customer,
        payment_method=invoice.customer.payment_methods.create(
            type="credit_card", processor="stripe", processor_token="pm_x", card_last4="4242"
        ),
        invoice=invoice,
        currency="USD",
        amount=invoice.amount_due,
        amount_minor=50000,
    )
    browser = Client()
    page = page_of(invoice)
    html = browser.get(page).content.decode()
    assert "is being processed" in html
    assert 'value="card"' not in html
    assert pay(browser, page, "card").status_code == 409
    assert stripe.sessions == {}


def test_a_revoked_link_opens_no_checkout(stripe, invoice, finance_admin) -> None:
    browser = Client()
    page = page_of(invoice)
    browser.get(page)
    invoice_links_revoke(actor=finance_admin, invoice_id=invoice.pk)
    answer = browser.post(f"{page}pay", {"way": "card"})
    assert answer.status_code == 404
    assert ProcessorAttempt.objects.count() == 0


def test_only_configured_ways_are_offered(invoice, settings) -> None:
    settings.STRIPE_SECRET_KEY = ""
    settings.PAYPAL_CLIENT_ID = ""
    settings.COINBASE_COMMERCE_API_KEY = ""
    html = Client().get(page_of(invoice)).content.decode()
    assert "Pay online" not in html
    assert "Bank transfer" in html


def test_paypal_payment_is_captured_when_the_payer_comes_back(paypal, invoice, settings) -> None:
    browser = Client()
    page = page_of(invoice)
    answer = pay(browser, page, "paypal")
    assert answer.status_code == 303
    (creation,) = paypal.order_creations()
    context = creation.body["payment_source"]["paypal"]["experience_context"]
    assert context["return_url"] == f"{settings.PUBLIC_BASE_URL}{page}paypal"
    assert context["cancel_url"] == f"{settings.PUBLIC_BASE_URL}{page}"
    order_id = re.search(r"token=(\w+)", answer["Location"]).group(1)
    # back without approving (the payer pressed back at PayPal): nothing captured
    assert browser.get(f"{page}paypal", {"token": order_id})["Location"] == page
    assert Payment.objects.count() == 0
    # approved: captured once, even when the return is loaded twice
    paypal.approve(order_id)
    for _ in range(2):
        back = browser.get(f"{page}paypal", {"token": order_id, "PayerID": "QYR5Z8XDVJNXQ"})
        assert back.status_code == 303
        assert back["Location"] == page
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    assert Payment.objects.count() == 1
    # an order id that is not this invoice's changes nothing
    assert browser.get(f"{page}paypal", {"token": "5O999999TN364715T"}).status_code == 303


def test_crypto_payment_is_recorded_from_coinbases_signed_webhook(coinbase, invoice, settings):
    browser = Client()
    page = page_of(invoice)
    answer = pay(browser, page, "crypto")
    assert answer.status_code == 303
    (creation,) = coinbase.creations()
    assert creation.body["redirect_url"] == f"{settings.PUBLIC_BASE_URL}{page}?paying=crypto"
    assert creation.body["local_price"] == {"amount": "500.00", "currency": "USD"}
    charge = next(iter(coinbase.charges.values()))
    assert answer["Location"] == charge["hosted_url"]
    # the payer is back: processing, until Coinbase confirms
    assert "confirmed on the chain" in browser.get(f"{page}?paying=crypto").content.decode()
    body = json.dumps(charge_event(charge, "charge:confirmed", event_id="evt-cb-1"))
    hook = browser.post(
        COINBASE_WEBHOOK,
        body,
        content_type="application/json",
        HTTP_X_CC_WEBHOOK_SIGNATURE=coinbase_server.sign(body, "cb-secret"),
    )
    assert hook.status_code == 200
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    assert Payment.objects.count() == 1
