"""The hosted invoice page in Chromium as a customer opens it from an email: at 1280 px and
at 375 px (no horizontal scrolling), no console errors, nothing loaded from elsewhere, the
PDF link working. Screenshots go to $E2E_SCREENSHOTS (or a temporary folder)."""

from __future__ import annotations

import os
import re
from decimal import Decimal
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import Page

from billing.services.customers import customer_create
from billing.services.invoices import LineInput, invoice_create
from billing.services.links import invoice_url
from billing.services.payments import AllocationInput, payment_record
from core.fx import fx_rate_set
from core.roles import Role
from tests.billing.fakes.stripe_server import running_fake_stripe

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]
D = Decimal


def test_the_hosted_page_reads_on_a_phone_and_a_desktop(
    browser_page: Page, live_server, make_user, tmp_path
) -> None:
    # given an issued invoice of three lines, part paid
    clerk = make_user(Role.FINANCE_ADMIN)
    fx_rate_set(base="EUR", quote="USD", rate=D("1.08"), rate_date=timezone.localdate())
    customer = customer_create(
        actor=clerk,
        name="Maison Lumière Architectes Associés SARL",
        email="compta@lumiere.example",
        currency="EUR",
    )
    invoice = invoice_create(
        actor=clerk,
        customer_id=customer.pk,
        issue=True,
        lines=[
            LineInput(description=text, quantity=D(q), unit_price=D(p), tax_rate=D("0.20"))
            for text, q, p in (
                ("Project management, November (hours)", "12", "95.00"),
                ("Structural review of the east wing drawings, revision C", "1", "1800.00"),
                ("Site visits", "3", "240.00"),
            )
        ],
    )
    payment_record(
        actor=clerk,
        customer_id=customer.pk,
        amount=D("1000.00"),
        currency="EUR",
        method="wire_transfer",
        allocations=[AllocationInput(invoice_id=invoice.pk, amount=D("1000.00"))],
    )
    path = re.sub(r"^https?://[^/]+", "", invoice_url(invoice_id=invoice.pk))
    errors: list[str] = []
    outside: list[str] = []
    page = browser_page
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("response", lambda r: errors.append(r.url) if r.status >= 400 else None)
    page.on(
        "request",
        lambda r: outside.append(r.url) if not r.url.startswith(live_server.url) else None,
    )
    folder = Path(os.environ.get("E2E_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    for width in (1280, 375):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(path)
        # then the figures a customer looks for are there, and the page fits the screen
        assert page.get_by_text("Amount due").is_visible()
        assert page.get_by_text(invoice.number).first.is_visible()
        assert page.get_by_text("Payments received").is_visible()
        assert page.evaluate(f"document.documentElement.scrollWidth <= {width}")
        page.screenshot(path=folder / f"hosted_invoice_{width}.png", full_page=True)
    assert errors == []
    assert outside == []
    # and its PDF opens through the same link
    response = page.request.get(path + "pdf")
    assert response.status == 200
    assert response.body().startswith(b"%PDF")


def test_paying_by_card_sends_no_card_number_to_us(
    browser_page: Page, live_server, make_user, settings, tmp_path
) -> None:
    """Issue 14: the page pays an invoice by card against the Stripe fake; every request the
    browser makes to our origin is inspected, and none carries the card number."""
    clerk = make_user(Role.FINANCE_ADMIN)
    customer = customer_create(
        actor=clerk, name="Card Payer Ltd", email="ap@cardpayer.example", currency="USD"
    )
    invoice = invoice_create(
        actor=clerk,
        customer_id=customer.pk,
        issue=True,
        lines=[
            LineInput(description="Support", quantity=D(1), unit_price=D("480.00"), tax_rate=D(0))
        ],
    )
    with running_fake_stripe() as stripe:
        settings.STRIPE_SECRET_KEY = "sk_test_fake"
        settings.STRIPE_API_BASE = stripe.url
        settings.STRIPE_WEBHOOK_SECRET = "whsec_e2e"
        settings.PUBLIC_BASE_URL = live_server.url
        settings.HOSTED_CHECKOUT_ORIGINS = [stripe.url]
        stripe.webhook_url = f"{live_server.url}/api/billing/webhooks/stripe"
        stripe.webhook_secret = "whsec_e2e"
        ours: list[str] = []
        page = browser_page
        page.on(
            "request",
            lambda r: (
                ours.append(f"{r.url} {r.post_data or ''}")
                if r.url.startswith(live_server.url)
                else None
            ),
        )
        path = re.sub(r"^https?://[^/]+", "", invoice_url(invoice_id=invoice.pk))
        folder = Path(os.environ.get("E2E_SCREENSHOTS") or tmp_path)
        folder.mkdir(parents=True, exist_ok=True)
        page.set_viewport_size({"width": 375, "height": 900})
        page.goto(path)
        assert page.evaluate("document.documentElement.scrollWidth <= 375")
        page.screenshot(path=folder / "hosted_pay_375.png", full_page=True)
        # when the payer presses "Pay by Card", they are on Stripe's page (the fake's origin)
        page.get_by_role("button", name="Pay by Card").click()
        page.wait_for_url(f"{stripe.url}/c/pay/*")
        assert page.locator("#amount").inner_text() == "480.00 USD"
        # a declined card is refused there, and nothing is recorded here
        page.fill("input[name=cardnumber]", "4000 0000 0000 0002")
        page.get_by_role("button", name="Pay").click()
        assert page.locator("#error").inner_text() == "Your card was declined."
        page.fill("input[name=cardnumber]", "4242 4242 4242 4242")
        page.fill("input[name=exp]", "12/30")
        page.fill("input[name=cvc]", "123")
        page.get_by_role("button", name="Pay").click()
        # then back on our page, which says the payment is being confirmed
        page.wait_for_url(f"{live_server.url}{path}?paying=card")
        assert page.get_by_text("being confirmed by Stripe").is_visible()
        page.screenshot(path=folder / "hosted_pay_processing_375.png", full_page=True)
        # and once Stripe's signed webhook arrives, paid
        for _ in range(40):
            page.reload()
            if page.locator(".status.paid").count():
                break
            page.wait_for_timeout(250)
        assert page.locator(".status.paid").is_visible()
        assert page.get_by_text("Your payment was received").is_visible()
        page.set_viewport_size({"width": 1280, "height": 900})
        page.screenshot(path=folder / "hosted_paid_1280.png", full_page=True)
    assert not [r for r in ours if re.search(r"4242|4000.?0000|cardnumber|cvc", r)]
    assert any(r.endswith("/pay way=card") or "way=card" in r for r in ours)
    invoice.refresh_from_db()
    assert invoice.status == "paid"
