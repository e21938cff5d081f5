"""The staff pages under their Content-Security-Policy, in Chromium: a finance administrator
logs in with password and authenticator code, then opens the dashboard, a change list, a
change form, an add form, a report and the approval inbox; the browser reports no blocked
script, style, image, font or request. Screenshots at 1280 px and 375 px of the dashboard
and the change form go to $E2E_SCREENSHOTS (or /tmp/csp_shots), to look at by hand."""

from __future__ import annotations

import os
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django_otp.oath import totp
from playwright.sync_api import ConsoleMessage, Error, Page, expect

from billing.services.customers import customer_create
from billing.services.invoices import LineInput, invoice_create
from core.accounts import mfa_enroll
from core.roles import Role

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

PASSWORD = "correct horse battery staple"
# What Chromium says when the policy blocks something (console and uncaught errors alike;
# Alpine.js reports a refused evaluation as an "Alpine Expression Error" naming the policy).
VIOLATION = ("Content Security Policy", "Refused to")


def _shots() -> Path:
    folder = Path(os.environ.get("E2E_SCREENSHOTS", "") or "/tmp/csp_shots")  # noqa: S108
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_staff_pages_run_under_their_policy_with_nothing_refused(
    browser_page: Page, make_user: Callable[..., User]
) -> None:
    # given a finance administrator with an authenticator, and an issued invoice
    user = make_user(Role.FINANCE_ADMIN, username="cora", mfa=False)
    device, _ = mfa_enroll(user=user)
    customer = customer_create(
        actor=user, name="Policy Ltd", email="ap@policy.example", currency="USD"
    )
    invoice = invoice_create(
        actor=user,
        customer_id=customer.pk,
        lines=[
            LineInput(
                description="Audit",
                quantity=Decimal(1),
                unit_price=Decimal("90.00"),
                tax_rate=Decimal(0),
            )
        ],
        issue=True,
    )
    page = browser_page
    refused: list[str] = []
    where = {"page": "/admin/login/"}

    def on_console(message: ConsoleMessage) -> None:
        if any(mark in message.text for mark in VIOLATION):
            refused.append(f"{where['page']}: {message.text}")

    def on_error(error: Error) -> None:
        if any(mark in str(error) for mark in VIOLATION):
            refused.append(f"{where['page']}: {error}")

    page.on("console", on_console)
    page.on("pageerror", on_error)
    page.set_viewport_size({"width": 1280, "height": 900})

    # when they log in with password and code (the login page's scripts run under the policy)
    page.goto("/admin/")
    page.wait_for_load_state("networkidle")
    page.fill("#id_username", "cora")
    page.fill("#id_password", PASSWORD)
    page.fill("#id_otp_token", f"{totp(device.bin_key):06d}")
    page.click("#login-form [type=submit]")
    expect(page.get_by_role("heading", name="Finance back-office")).to_be_visible()

    # and open the workspace's kinds of page
    change_form = f"/admin/billing/invoice/{invoice.pk}/change/"
    pages = [
        "/admin/",
        "/admin/billing/invoice/",
        change_form,
        "/admin/billing/customer/add/",
        "/admin/reporting/ar-aging/",
        "/approvals/",
    ]
    for url in pages:
        where["page"] = url
        response = page.goto(url)
        assert response is not None
        assert response.status == 200, url
        assert "'unsafe-eval'" in response.headers["content-security-policy"]
        page.wait_for_load_state("networkidle")
        if url in ("/admin/", change_form):
            name = "index" if url == "/admin/" else "change_form"
            page.screenshot(path=str(_shots() / f"{name}_1280.png"), full_page=True)
            page.set_viewport_size({"width": 375, "height": 800})
            page.wait_for_timeout(200)
            page.screenshot(path=str(_shots() / f"{name}_375.png"), full_page=True)
            page.set_viewport_size({"width": 1280, "height": 900})

    # then nothing was refused, and Alpine.js (the theme's menus) is running
    assert refused == [], "\n".join(refused)
    page.goto("/admin/")
    assert page.evaluate("() => typeof window.Alpine") == "object"
