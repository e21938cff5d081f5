"""A finance clerk's day in the billing workspace, in a real browser: log in with the second
factor, write an invoice from a catalog price, issue it from its confirmation page, record a
partial payment ("Partly paid" and the new amount due), issue a credit note from the invoice,
and find the invoice again by its amount. Screenshots at 1280 px go to $E2E_SCREENSHOTS (or
the test's temporary folder)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django_otp.oath import totp
from playwright.sync_api import Page, expect

from billing.models import CreditNote, Invoice
from billing.services.customers import customer_create
from billing.services.subscriptions import price_create, product_create
from core.accounts import mfa_enroll

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

PASSWORD = "correct horse battery staple"


def log_in_through(page: Page, path: str, *, username: str, key: bytes) -> None:
    """Open ``path``; the screens send us to the admin's OTP login, which sends us back."""
    page.goto(path)
    expect(page).to_have_url(re.compile(r"/admin/login/\?next="))
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.fill("#id_otp_token", f"{totp(key):06d}")
    page.click("#login-form [type=submit]")
    expect(page).to_have_url(re.compile(re.escape(path) + "$"))


@pytest.fixture
def shots(tmp_path: Path) -> Callable[[Page, str], None]:
    folder = Path(os.environ.get("E2E_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)

    def shoot(page: Page, name: str) -> None:
        page.screenshot(path=str(folder / f"billing_{name}.png"), full_page=True)
        # Nothing cut off at 1280 px: the page does not scroll sideways.
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 1280, f"{name} is {width} px wide"

    return shoot


def test_a_clerks_day_with_an_invoice(
    browser_page: Page, make_user: Callable[..., User], shots: Callable[[Page, str], None]
) -> None:
    # given a finance clerk with an authenticator, a customer and a catalog price
    user = make_user("finance_admin", username="fiona", mfa=False)
    device, _ = mfa_enroll(user=user)
    customer = customer_create(
        actor=user, name="Globex Corp", email="ap@globex.example", currency="USD"
    )
    product = product_create(actor=None, name="Pro seats")
    price = price_create(
        actor=None,
        product_id=product.pk,
        currency="USD",
        type="per_unit",
        interval="month",
        unit_amount=Decimal("49.00"),
        nickname="Pro monthly",
    )
    page = browser_page
    page.set_viewport_size({"width": 1280, "height": 900})

    # when the clerk logs in and writes a draft: 5 seats from the catalog at 8.75 % tax
    log_in_through(page, "/admin/billing/invoice/add/", username="fiona", key=device.bin_key)
    page.wait_for_selector("#id_customer", state="attached")
    page.evaluate(
        """([id, label]) => {
            const select = document.querySelector('#id_customer');
            select.append(new Option(label, id, true, true));
            select.dispatchEvent(new Event('change', {bubbles: true}));
        }""",
        [str(customer.pk), customer.name],
    )
    page.select_option("#id_lines-0-catalog_price", str(price.pk))
    page.fill("#id_lines-0-quantity", "5")
    page.fill("#id_lines-0-tax_rate", "8.75")
    shots(page, "1_draft")
    page.click("[name=_continue]")

    # then the draft is priced from the catalog: 245.00 + 21.44 tax
    expect(page.locator("body")).to_contain_text("266.44 USD")
    invoice = Invoice.objects.get()

    # when the clerk opens Issue: the page shows what will be posted, then issues
    page.click(f"a[href$='/billing/invoice/{invoice.pk}/issue/']")
    expect(page.locator("#confirm-action")).to_contain_text("What will be posted to the ledger")
    expect(page.locator(".posting-preview").first).to_contain_text("266.44 USD")
    shots(page, "2_issue_confirmation")
    page.click("#confirm-action [name=confirm]")
    invoice.refresh_from_db()
    expect(page.locator("body")).to_contain_text(f"Invoice {invoice.number} issued")

    # when the clerk records 100.00 of it received by wire
    page.click(f"a[href$='/billing/payment/add/?invoice={invoice.pk}']")
    page.fill("#id_amount", "100.00")
    page.click("[name=_propose]")
    expect(page.locator("#allocations input[name$='-amount']")).to_have_value("100.00")
    shots(page, "3_record_payment")
    page.click("[name=_save]")

    # then the invoice reads "Partly paid" with 166.44 USD due
    expect(page.locator("body")).to_contain_text("Partly paid")
    expect(page.locator("body")).to_contain_text("166.44 USD")
    shots(page, "4_partly_paid")

    # when the clerk credits 10.00 of it from the invoice's page
    page.click(f"a[href$='/billing/creditnote/add/?invoice={invoice.pk}']")
    page.check("input[name=extent][value=partial]")
    page.fill("#id_lines-0-description", "Goodwill: one seat-day")
    page.fill("#id_lines-0-amount", "10.00")
    page.fill("#id_reason", "Service outage")
    shots(page, "5_credit_note")
    page.click("[name=_save]")

    # then the credit note is issued on that invoice
    note = CreditNote.objects.get()
    assert note.invoice_id == invoice.pk
    expect(page.locator("body")).to_contain_text(f"Credit note {note.number} issued")

    # when the clerk looks the invoice up by its total, typed with a separator
    page.goto("/admin/billing/invoice/?q=266.44")

    # then it is found
    expect(page.locator("#result_list")).to_contain_text(invoice.number or "")
    shots(page, "6_found_by_amount")
