"""The finance dashboard in Chromium, on the demo data: a finance administrator logs in with
the second factor, the charts draw with no console error, a payment recorded through the API
shows in the AR figure of the open page at the next refresh (no reload), and the page is
photographed at 1280 px and 375 px ($E2E_SCREENSHOTS)."""

from __future__ import annotations

import io
import os
import re
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django_otp.oath import totp
from djmoney.money import Money
from playwright.sync_api import ConsoleMessage, Page, expect
from pytest_django import Settings
from rest_framework.test import APIClient

from billing.enums import InvoiceStatus
from billing.models import Customer, Invoice, ProcessorAttempt
from billing.models.processors import AttemptStatus
from billing.services.payment_methods import payment_method_add
from core.accounts import mfa_enroll
from core.admin_confirm import amount_text
from core.roles import Role

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

PASSWORD = "correct horse battery staple"
CHARTS_DRAWN = (
    "() => [...document.querySelectorAll('canvas.dashboard-chart')]"
    ".filter((c) => Chart.getChart(c)).length"
)


def charts_drawn(page: Page) -> None:
    """Wait until Chart.js has drawn every chart canvas on the page (a busy machine draws
    late; a canvas left blank fails after 15 s)."""
    page.wait_for_function(
        f"() => {{ const drawn = ({CHARTS_DRAWN})(); "
        "return drawn > 0 && drawn === document.querySelectorAll('canvas.dashboard-chart')"
        ".length; }",
        timeout=15_000,
    )


def _shots() -> Path:
    folder = Path(os.environ.get("E2E_SCREENSHOTS", "") or "/tmp/dashboard")  # noqa: S108
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _amount(text: str) -> Decimal:
    return Decimal(text.rsplit(" ", 1)[0].replace(",", ""))


def _declined_charges() -> None:
    """Two declined card charges this week, so the payment-success chart has a line."""
    customer = Customer.objects.filter(currency="USD").order_by("pk").first()
    assert customer is not None, "the demo has a USD customer"
    method = payment_method_add(
        actor=None,
        customer_id=customer.pk,
        type="ach",
        bank_account_holder=customer.name,
        bank_routing_number="110000000",
        bank_account_number="000123456789",
    )
    for code in ("card_declined", "insufficient_funds"):
        ProcessorAttempt.objects.create(
            processor="stripe",
            customer=customer,
            payment_method=method,
            currency="USD",
            amount=Money("10.00", "USD"),
            amount_minor=1000,
            status=AttemptStatus.FAILED,
            failure_code=code,
        )


@pytest.fixture
def admin_page(
    browser_page: Page, make_user: Callable[..., User], settings: Settings
) -> tuple[Page, User, list[str]]:
    """The demo data, the panels refreshed every 2 s, and a finance administrator logged in
    with password and authenticator code; console errors collected."""
    settings.DASHBOARD_REFRESH_SECONDS = 2
    call_command("seed_demo", "--scale", "0.1", stdout=io.StringIO())
    _declined_charges()
    user = make_user(Role.FINANCE_ADMIN, username="dana", mfa=False)
    device, _ = mfa_enroll(user=user)
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(f"{message.text} at {message.location.get('url', '')}")

    page = browser_page
    # The browser's own probe for /favicon.ico (the site declares no icon) is no page error.
    page.route("**/favicon.ico", lambda route: route.fulfill(status=204))
    page.on("console", on_console)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "response",
        lambda response: (
            errors.append(f"{response.status} {response.url}") if response.status >= 400 else None
        ),
    )
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto("/admin/")
    page.fill("#id_username", "dana")
    page.fill("#id_password", PASSWORD)
    page.fill("#id_otp_token", f"{totp(device.bin_key):06d}")
    page.click("#login-form [type=submit]")
    expect(page.get_by_role("heading", name="Finance back-office")).to_be_visible()
    return page, user, errors


def test_the_dashboard_draws_its_charts_and_shows_a_new_payment_without_a_reload(
    admin_page: tuple[Page, User, list[str]], integration_client: APIClient
) -> None:
    page, _user, errors = admin_page

    # then every panel's chart is drawn by Chart.js, and each figure says how it is computed
    canvases = page.locator("canvas.dashboard-chart")
    expect(canvases.first).to_be_visible()
    total = canvases.count()
    assert total >= 4, "aging (AR, AP), payment success and projection charts"
    expect(page.locator("#panel-payments canvas.dashboard-chart")).to_be_visible()
    expect(page.locator("#panel-payments")).to_contain_text("card_declined")
    charts_drawn(page)
    for panel in ("cash", "ar", "ap", "ratios", "mrr", "payments", "projection"):
        expect(page.locator(f"#panel-{panel}")).to_be_visible()
    expect(page.locator('[data-figure="ar-USD"]').locator("xpath=..")).to_have_attribute(
        "title", re.compile("days past its due date")
    )
    expect(page.locator('[data-count="overdue_invoices"]')).to_have_attribute(
        "href", re.compile(r"overdue=yes")
    )
    page.screenshot(path=str(_shots() / "dashboard_1280.png"), full_page=True)

    # when a payment for an open USD invoice is recorded through the API
    figure = page.locator('[data-figure="ar-USD"]')
    before = _amount(figure.inner_text())
    invoice = (
        Invoice.objects.filter(status=InvoiceStatus.OPEN, currency="USD")
        .exclude(number=None)
        .order_by("pk")
        .first()
    )
    assert invoice is not None, "the demo has an open USD invoice"
    page.evaluate("() => { window.dashboardNotReloaded = true; }")
    response = integration_client.post(
        "/api/billing/payments",
        {
            "customer": invoice.customer_id,
            "amount": "10.00",
            "currency": "USD",
            "method": "ach",
            "allocations": [{"invoice": invoice.pk, "amount": "10.00"}],
        },
        format="json",
    )
    assert response.status_code == 201, response.json()

    # then the open page shows AR 10.00 USD lower at its next refresh, without a reload
    expect(figure).to_have_text(amount_text(before - Decimal("10.00"), "USD"), timeout=15_000)
    assert page.evaluate("() => window.dashboardNotReloaded") is True
    charts_drawn(page)  # again, after the swap
    assert errors == []

    # and at a phone's width nothing spills out sideways
    page.set_viewport_size({"width": 375, "height": 800})
    page.wait_for_timeout(500)
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
    page.screenshot(path=str(_shots() / "dashboard_375.png"), full_page=True)
    assert errors == []


def test_a_bad_date_says_so_on_the_page(admin_page: tuple[Page, User, list[str]]) -> None:
    page, _user, errors = admin_page
    # when the clerk asks for a day that does not exist
    page.goto("/admin/?as_of=2026-02-30")
    # then the page says so and shows today's figures
    expect(page.locator("#dashboard-as-of-error")).to_contain_text("is not a date")
    expect(page.locator("#panel-ar")).to_be_visible()
    assert errors == []
