"""The customer portal (issue 14 section 2): magic links (single use, expiring, revocable),
sessions, rate limits, the access log, and what a customer does there."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from billing.services.customers import customer_create
from billing.services.invoices import LineInput, invoice_create
from billing.services.links import invoice_url
from billing.services.payment_methods import payment_method_add
from core.events.models import Event
from core.roles import Role
from portal.models import DisputeMessage, PortalAccess, PortalLink, PortalSession
from portal.services import portal_link_send, portal_revoke
from receivables.models_disputes import Dispute

pytestmark = pytest.mark.django_db
D = Decimal
IP = "203.0.113.7"


@pytest.fixture
def admin_user(make_user):
    return make_user(Role.FINANCE_ADMIN)


@pytest.fixture
def customer(admin_user):
    return customer_create(
        actor=admin_user, name="Portal Co", email="AP@Portal.example", currency="USD"
    )


@pytest.fixture
def invoice(admin_user, customer):
    return invoice_create(
        actor=admin_user,
        customer_id=customer.pk,
        issue=True,
        lines=[LineInput(description="Plan", quantity=D(1), unit_price=D("120.00"), tax_rate=D(0))],
    )


@pytest.fixture(autouse=True)
def commit_callbacks_run_at_once(monkeypatch):
    """The tests run in a transaction that never commits: the callbacks the portal leaves for
    after the commit (its emails) run when registered instead."""
    from django.db import transaction

    monkeypatch.setattr("portal.services.transaction.on_commit", lambda func, robust=False: func())
    return transaction


def browser() -> Client:
    return Client(REMOTE_ADDR=IP, HTTP_USER_AGENT="pytest")


def link_in(message) -> str:
    return re.search(r"https?://\S+/portal/enter/\S+", message.body).group(0)


def path_of(url: str) -> str:
    return re.sub(r"^https?://[^/]+", "", url)


def sign_in(client: Client, customer) -> None:
    mail.outbox.clear()
    client.post("/portal/", {"email": customer.email})
    entry = path_of(link_in(mail.outbox[-1]))
    assert client.post(entry).status_code == 303


def test_a_link_asked_for_by_email_signs_in_once(
    customer, invoice, django_capture_on_commit_callbacks
):
    client = browser()
    mail.outbox.clear()
    # when the customer asks with their address, in any case
    answer = client.post("/portal/", {"email": "ap@portal.EXAMPLE"})
    assert answer.status_code == 200
    assert "a link to sign in is on its way" in answer.content.decode()
    (message,) = mail.outbox
    assert message.to == [customer.email]
    entry = path_of(link_in(message))
    # the link's page does not use it (mail scanners fetch links)
    assert client.get(entry).status_code == 200
    assert client.get(entry).status_code == 200
    # its button does, once
    signed = client.post(entry)
    assert signed.status_code == 303
    cookie = signed.cookies["bo_portal"]
    assert cookie["httponly"]
    assert cookie["path"] == "/portal/"
    home = client.get("/portal/home")
    assert home.status_code == 200
    html = home.content.decode()
    assert invoice.number in html
    assert invoice_url(invoice_id=invoice.pk) in html  # its pay page
    assert "120.00 USD" in html
    assert "<script" not in html
    assert "default-src 'none'" in home["Content-Security-Policy"]
    # used: a second try is refused, in another browser too
    assert browser().post(entry).status_code == 404
    assert PortalAccess.objects.filter(action="link_refused").count() == 1


def test_an_unknown_address_gets_the_same_answer_and_no_mail(customer):
    mail.outbox.clear()
    answer = browser().post("/portal/", {"email": "someone@else.example"})
    assert answer.status_code == 200
    assert "a link to sign in is on its way" in answer.content.decode()
    assert mail.outbox == []
    assert PortalLink.objects.count() == 0


def test_expired_and_revoked_links_and_sessions_are_refused(customer, admin_user, settings):
    client = browser()
    sign_in(client, customer)
    assert client.get("/portal/home").status_code == 200
    # staff revoke: the session ends and an unused link is withdrawn
    spare = browser()
    mail.outbox.clear()
    spare.post("/portal/", {"email": customer.email})
    spare_entry = path_of(link_in(mail.outbox[-1]))
    done = portal_revoke(actor=admin_user, customer_id=customer.pk)
    assert (done.links, done.sessions) == (1, 1)
    assert client.get("/portal/home").status_code == 401
    assert spare.post(spare_entry).status_code == 404
    # an expired link
    link = portal_link_send(actor=admin_user, customer_id=customer.pk)
    entry = path_of(link_in(mail.outbox[-1]))
    PortalLink.objects.filter(pk=link.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert "expired" in browser().post(entry).content.decode()
    # (links asked for earlier no longer count toward the address's limit)
    PortalLink.objects.update(created_at=timezone.now() - timedelta(hours=1))
    # an idle session
    other = browser()
    sign_in(other, customer)
    PortalSession.objects.filter(ended_at=None).update(
        last_seen_at=timezone.now() - timedelta(minutes=31)
    )
    assert other.get("/portal/home").status_code == 401
    # signing out ends it
    third = browser()
    sign_in(third, customer)
    assert third.post("/portal/sign-out").status_code == 200
    assert third.get("/portal/home").status_code == 401


def test_link_requests_are_rate_limited(customer):
    client = browser()
    mail.outbox.clear()
    for _ in range(5):
        client.post("/portal/", {"email": customer.email})
    assert len(mail.outbox) == 3  # per address, quietly
    for _ in range(5):
        client.post("/portal/", {"email": "x@y.example"})
    assert client.post("/portal/", {"email": "x@y.example"}).status_code == 429
    assert browser().get("/portal/").status_code == 200


def test_every_visit_is_logged(customer, invoice):
    client = browser()
    sign_in(client, customer)
    client.get("/portal/home")
    client.get("/portal/statement")
    views = PortalAccess.objects.filter(action="view", customer=customer)
    assert list(views.order_by("pk").values_list("path", flat=True)) == [
        "/portal/home",
        "/portal/statement",
    ]
    assert set(views.values_list("ip", flat=True)) == {IP}
    assert PortalAccess.objects.filter(action="signed_in", customer=customer).count() == 1


def test_payment_methods_and_autopay(customer, admin_user, make_user):
    first = payment_method_add(
        actor=admin_user,
        customer_id=customer.pk,
        type="credit_card",
        processor="stripe",
        processor_customer_id="cus_1",
        processor_token="pm_1",
        card_brand="visa",
        card_last4="4242",
        card_exp_month=12,
        card_exp_year=2030,
    )
    second = payment_method_add(
        actor=admin_user,
        customer_id=customer.pk,
        type="credit_card",
        processor="stripe",
        processor_customer_id="cus_1",
        processor_token="pm_2",
        card_brand="mastercard",
        card_last4="4444",
        card_exp_month=1,
        card_exp_year=2031,
    )
    stranger = customer_create(actor=admin_user, name="Other", email="o@o.example", currency="USD")
    theirs = payment_method_add(
        actor=admin_user,
        customer_id=stranger.pk,
        type="credit_card",
        processor="stripe",
        processor_customer_id="cus_2",
        processor_token="pm_3",
        card_brand="visa",
        card_last4="1111",
        card_exp_month=1,
        card_exp_year=2031,
    )
    client = browser()
    sign_in(client, customer)
    assert "4444" in client.get("/portal/home").content.decode()
    assert client.post(f"/portal/methods/{second.pk}/default").status_code == 303
    second.refresh_from_db()
    first.refresh_from_db()
    assert second.is_default
    assert not first.is_default
    # removing asks first: the page names the card, nothing is removed yet
    asked = client.get(f"/portal/methods/{first.pk}/remove")
    assert "Remove Visa ••••4242?" in asked.content.decode()
    first.refresh_from_db()
    assert first.detached_at is None
    assert client.get(f"/portal/methods/{theirs.pk}/remove").status_code == 404
    assert client.post(f"/portal/methods/{first.pk}/remove").status_code == 303
    first.refresh_from_db()
    assert first.detached_at is not None
    # another customer's method is not there for them
    assert client.post(f"/portal/methods/{theirs.pk}/remove").status_code == 404
    theirs.refresh_from_db()
    assert theirs.detached_at is None
    assert client.post("/portal/autopay", {"on": "1"}).status_code == 303
    customer.refresh_from_db()
    assert customer.autopay is True
    assert client.post("/portal/autopay", {"on": "0"}).status_code == 303
    customer.refresh_from_db()
    assert customer.autopay is False
    actions = set(PortalAccess.objects.values_list("action", flat=True))
    assert {"method_default", "method_removed", "autopay_on", "autopay_off"} <= actions


PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def test_a_dispute_with_a_message_and_a_file(customer, invoice):
    client = browser()
    sign_in(client, customer)
    answer = client.post(
        "/portal/disputes/new",
        {
            "invoice": invoice.pk,
            "amount": "40.00",
            "message": "We were billed for 3 seats; we have 2.",
            "attachment": SimpleUploadedFile("seats.pdf", PDF, content_type="application/pdf"),
        },
    )
    assert answer.status_code == 303
    dispute = Dispute.objects.get()
    assert dispute.amount.amount == D("40.00")
    assert dispute.invoice_id == invoice.pk
    note = DisputeMessage.objects.get()
    assert note.attachment.read() == PDF
    assert note.attachment_name == "seats.pdf"
    assert Event.objects.filter(type="dispute.opened").count() == 1


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"message": ""}, "Tell us what is wrong"),
        ({"amount": "lots"}, "not a number"),
        ({"invoice": "999999"}, "No such invoice"),
        ({"attachment": SimpleUploadedFile("x.pdf", b"MZ\x90\x00evil")}, "PDF, PNG or JPEG"),
        (
            {"attachment": SimpleUploadedFile("big.pdf", b"%PDF-" + b"0" * (5 * 1024 * 1024))},
            "larger than 5 MB",
        ),
    ],
)
def test_a_bad_dispute_is_explained_and_changes_nothing(customer, invoice, fields, message):
    client = browser()
    sign_in(client, customer)
    data = {"invoice": invoice.pk, "amount": "", "message": "Wrong price", **fields}
    answer = client.post("/portal/disputes/new", data)
    assert 400 <= answer.status_code < 500
    assert message in answer.content.decode()
    assert Dispute.objects.count() == 0
    assert DisputeMessage.objects.count() == 0


def test_staff_send_and_revoke_through_the_api(client_for, customer):
    api = client_for(Role.AR_CLERK)
    mail.outbox.clear()
    sent = api.post(f"/api/portal/customers/{customer.pk}/link")
    assert sent.status_code == 202
    assert sent.json()["sent_to"] == customer.email
    assert len(mail.outbox) == 1
    revoked = api.post(f"/api/portal/customers/{customer.pk}/revoke")
    assert revoked.json() == {"links": 1, "sessions": 0}
    assert (
        client_for(Role.AUDITOR).post(f"/api/portal/customers/{customer.pk}/link").status_code
        == 403
    )
    assert client_for(Role.AR_CLERK).post("/api/portal/customers/999999/link").status_code == 404


def test_a_card_is_saved_on_stripes_page_and_kept_from_the_webhook(customer, settings):
    import json

    from billing.models import PaymentMethod, WebhookEvent
    from tests.billing.fakes.stripe_server import running_fake_stripe, sign

    with running_fake_stripe() as fake:
        settings.STRIPE_SECRET_KEY = "sk_test_fake"
        settings.STRIPE_API_BASE = fake.url
        settings.STRIPE_TIMEOUT_SECONDS = 2
        settings.STRIPE_WEBHOOK_SECRET = "whsec_portal"
        client = browser()
        sign_in(client, customer)
        assert "Add a card" in client.get("/portal/home").content.decode()
        # the customer is sent to Stripe's page; no card field is ours
        answer = client.post("/portal/methods/add")
        assert answer.status_code == 303
        (session,) = fake.sessions.values()
        assert answer["Location"] == session["url"]
        assert session["mode"] == "setup"
        assert session["customer"] in fake.customers  # a Stripe customer was made for them
        fake.setup_complete(session["id"], card="4000056655665556")
        (event,) = fake.events_sent
        body = json.dumps(event)

        def deliver():
            return Client().post(
                "/api/billing/webhooks/stripe",
                body,
                content_type="application/json",
                HTTP_STRIPE_SIGNATURE=sign(body, "whsec_portal"),
            )

        # Stripe cannot be read just then: 503, nothing saved, the event kept for its retry
        settings.STRIPE_API_BASE = "http://127.0.0.1:9"
        assert deliver().status_code == 503
        assert not PaymentMethod.objects.filter(customer=customer).exists()
        assert WebhookEvent.objects.get().processed_at is None
        # Stripe sends it again (twice): saved once
        settings.STRIPE_API_BASE = fake.url
        assert deliver().status_code == 200
        assert deliver().status_code == 200
        (card,) = PaymentMethod.objects.filter(customer=customer)
        assert (card.card_last4, card.processor_customer_id) == ("5556", session["customer"])
        assert card.processor_token.startswith("pm_fake")
        assert card.is_default
        assert "5556" in client.get("/portal/home?done=card").content.decode()
        assert PortalAccess.objects.filter(action="card_setup_started").count() == 1


def test_a_paypal_wallet_is_saved_after_paypal_confirms_the_approval(customer, settings):
    from billing.models import PaymentMethod
    from tests.billing.fakes import paypal_server
    from tests.billing.fakes.paypal_server import running_fake_paypal

    with running_fake_paypal() as fake:
        settings.PAYPAL_CLIENT_ID = paypal_server.CLIENT_ID
        settings.PAYPAL_CLIENT_SECRET = paypal_server.CLIENT_SECRET
        settings.PAYPAL_API_BASE = fake.url
        settings.PAYPAL_TIMEOUT_SECONDS = 2
        client = browser()
        sign_in(client, customer)
        assert "Save a PayPal account" in client.get("/portal/home").content.decode()
        # the customer is sent to PayPal's approval page, with our return address
        answer = client.post("/portal/methods/paypal")
        assert answer.status_code == 303
        (setup,) = fake.setup_tokens.values()
        assert answer["Location"].endswith(f"approval_session_id={setup['id']}")
        (request,) = fake.calls("POST", "/v3/vault/setup-tokens")
        context = request.body["payment_source"]["paypal"]["experience_context"]
        assert context["return_url"].endswith("/portal/methods/paypal/return")
        back = f"/portal/methods/paypal/return?approval_token_id={setup['id']}"
        # coming back before PayPal has the approval: explained, nothing saved
        refused = client.get(back)
        assert refused.status_code == 400
        assert "PayPal has not confirmed the approval" in refused.content.decode()
        assert client.get("/portal/methods/paypal/return").status_code == 400
        # approved at PayPal: saved, shown with the PayPal login
        fake.approve_setup(setup["id"], email="payer@portal.example")
        saved = client.get(back)
        assert saved.status_code == 303
        assert saved["Location"].endswith("?done=wallet")
        (wallet,) = PaymentMethod.objects.filter(customer=customer)
        assert (wallet.processor, wallet.processor_account) == ("paypal", "payer@portal.example")
        page = client.get("/portal/home?done=wallet").content.decode()
        assert "PayPal payer@portal.example" in page
        assert "Your PayPal account is saved." in page
        actions = set(PortalAccess.objects.values_list("action", flat=True))
        assert {"wallet_setup_started", "wallet_setup_refused", "wallet_saved"} <= actions
        # without a session the return address does nothing
        assert Client().get(back).status_code in (302, 303, 401, 403)
        assert PaymentMethod.objects.count() == 1
