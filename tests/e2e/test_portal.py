"""The customer portal in Chromium, as a customer uses it from their phone: ask for a link,
open it, continue, read the account and the statement, make a card the default, dispute an
invoice. No horizontal scrolling at 375 px or 1280 px, nothing loaded from elsewhere, no
console errors. Screenshots go to $E2E_SCREENSHOTS (or a temporary folder)."""

from __future__ import annotations

import os
import re
from decimal import Decimal
from pathlib import Path

import pytest
from django.core import mail
from playwright.sync_api import Page

from billing.services.customers import customer_create
from billing.services.invoices import LineInput, invoice_create
from billing.services.payment_methods import payment_method_add
from core.roles import Role
from receivables.models_disputes import Dispute

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]
D = Decimal


def test_a_customer_signs_in_by_email_and_reads_their_account(
    browser_page: Page, live_server, make_user, settings, tmp_path
) -> None:
    settings.PUBLIC_BASE_URL = live_server.url
    admin = make_user(Role.FINANCE_ADMIN)
    customer = customer_create(
        actor=admin,
        name="Northwind Trading Company Limited",
        email="accounts@northwind.example",
        currency="USD",
    )
    for amount in ("1250.00", "89.90"):
        invoice_create(
            actor=admin,
            customer_id=customer.pk,
            issue=True,
            lines=[
                LineInput(
                    description="Subscription", quantity=D(1), unit_price=D(amount), tax_rate=D(0)
                )
            ],
        )
    for n, last4 in enumerate(("4242", "5555"), start=1):
        payment_method_add(
            actor=admin,
            customer_id=customer.pk,
            type="credit_card",
            processor="stripe",
            processor_customer_id="cus_nw",
            processor_token=f"pm_nw_{n}",
            card_brand="visa",
            card_last4=last4,
            card_exp_month=12,
            card_exp_year=2030,
        )
    # a saved PayPal wallet, and PayPal configured (the page offers to save another)
    payment_method_add(
        actor=admin,
        customer_id=customer.pk,
        type="credit_card",
        processor="paypal",
        processor_customer_id="customer_4029352050",
        processor_token="8kk8451t",
        processor_account="accounts@northwind.example",
    )
    settings.PAYPAL_CLIENT_ID = "client-id"
    settings.PAYPAL_CLIENT_SECRET = "client-secret"
    page = browser_page
    errors: list[str] = []
    outside: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on(
        "request",
        lambda r: outside.append(r.url) if not r.url.startswith(live_server.url) else None,
    )
    folder = Path(os.environ.get("E2E_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 375, "height": 800})
    mail.outbox.clear()
    page.goto("/portal/")
    page.fill("input[name=email]", "Accounts@Northwind.example")
    page.get_by_role("button", name="Email me a link").click()
    assert page.get_by_text("a link to sign in is on its way").is_visible()
    link = re.search(r"https?://\S+/portal/enter/\S+", mail.outbox[-1].body).group(0)
    page.goto(link)
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/portal/home")
    assert page.get_by_text("1,339.90 USD").is_visible()
    assert page.get_by_text("PayPal accounts@northwind.example").is_visible()
    assert page.get_by_role("button", name="Save a PayPal account").is_visible()
    for width in (375, 1280):
        page.set_viewport_size({"width": width, "height": 900})
        page.reload()
        assert page.evaluate(f"document.documentElement.scrollWidth <= {width}")
        page.screenshot(path=folder / f"portal_home_{width}.png", full_page=True)
    page.set_viewport_size({"width": 375, "height": 800})
    page.get_by_role("button", name="Make default").first.click()
    assert page.get_by_text("Saved.").is_visible()
    # removing a card asks first
    page.get_by_role("link", name="Remove").first.click()
    assert page.get_by_role("heading", name=re.compile(r"Remove Visa ••••\d{4}\?")).is_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= 375")
    page.screenshot(path=folder / "portal_remove_375.png", full_page=True)
    page.get_by_role("link", name="Keep it").click()
    page.wait_for_url("**/portal/home")
    page.get_by_role("link", name="Statement of account").click()
    # the statement: both invoices with the running balance, for a period the customer picks
    assert page.get_by_text("balance 1,339.90 USD").is_visible()
    page.fill("input[name=date_from]", "2020-01-01")
    page.get_by_role("button", name="Show").click()
    assert page.get_by_text("Balance on 2020-01-01").is_visible()
    for width in (375, 1280):
        page.set_viewport_size({"width": width, "height": 900})
        assert page.evaluate(f"document.documentElement.scrollWidth <= {width}")
        page.screenshot(path=folder / f"portal_statement_{width}.png", full_page=True)
    page.set_viewport_size({"width": 375, "height": 800})
    page.goto("/portal/disputes/new")
    page.select_option("select[name=invoice]", index=1)
    page.fill("textarea[name=message]", "The second seat was cancelled in October.")
    page.fill("input[name=amount]", "89.90")
    assert page.evaluate("document.documentElement.scrollWidth <= 375")
    page.screenshot(path=folder / "portal_dispute_375.png", full_page=True)
    page.get_by_role("button", name="Send the dispute").click()
    assert page.get_by_text("Your dispute was sent.").is_visible()
    assert Dispute.objects.filter(customer=customer).count() == 1
    assert errors == []
    assert outside == []
