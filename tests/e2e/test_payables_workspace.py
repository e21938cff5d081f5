"""The payables workspace in a real browser at 1280 px: an AP clerk's day (log in with the
second factor, capture a vendor's bill with its lines: it is submitted for approval) and an
approver's day (open the bill, approve it through the confirmation page that shows the
entry it posts). Screenshots of each screen are kept for people to look at."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from django_otp.oath import totp
from playwright.sync_api import Page, expect

from core.accounts import mfa_enroll
from core.ledger.models import JournalEntry
from payables.enums import BillStatus
from payables.models import Approval, Bill
from payables.services.vendors import BankDetails, vendor_activate, vendor_create

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

PASSWORD = "correct horse battery staple"
SHOTS = Path(os.environ.get("E2E_SHOTS") or tempfile.gettempdir())
WIDE = {"width": 1280, "height": 900}


def user_with_authenticator(
    make_user: Callable[..., User], role: str, username: str
) -> tuple[User, bytes]:
    user = make_user(role, username=username, mfa=False)
    device, _ = mfa_enroll(user=user)
    return user, device.bin_key


def log_in_through(page: Page, path: str, *, username: str, key: bytes) -> None:
    """Open ``path``; the admin sends us to its OTP login, which sends us back."""
    page.goto(path)
    expect(page).to_have_url(re.compile(r"/admin/login/\?next="))
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.fill("#id_otp_token", f"{totp(key):06d}")
    page.click("#login-form [type=submit]")
    expect(page).to_have_url(re.compile(re.escape(path) + "$"))


def shoot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / f"payables_workspace_{name}.png", full_page=True)


def test_clerk_captures_a_bill_and_an_approver_approves_it(
    browser_page: Page, make_user: Callable[..., User]
) -> None:
    # given an active vendor, an AP clerk and an approver, each with an authenticator
    clerk, clerk_key = user_with_authenticator(make_user, "ap_clerk", "carla")
    approver, approver_key = user_with_authenticator(make_user, "approver", "adam")
    vendor = vendor_create(
        actor=clerk,
        name="Globex Supplies",
        email="globex@vendor.example",
        currency="USD",
        bank=BankDetails(
            account_holder="Globex", routing_number="011000015", account_number="123456789"
        ),
    )
    vendor_activate(vendor_id=vendor.pk, actor=make_user("controller"))
    page = browser_page
    page.set_viewport_size(WIDE)

    # when the clerk logs in and captures the vendor's bill with two lines
    log_in_through(page, "/admin/payables/bill/add/", username="carla", key=clerk_key)
    page.locator("#id_vendor").locator("xpath=following-sibling::span[1]").click()
    page.locator(".select2-search__field").fill("Globex")
    page.locator(".select2-results__option", has_text="Globex Supplies").click()
    page.fill("#id_number", "GX-2041")
    page.fill("#id_bill_date", timezone.localdate().isoformat())
    page.fill("#id_lines-0-description", "Office chairs")
    page.fill("#id_lines-0-quantity", "3")
    page.fill("#id_lines-0-price", "1250.50")
    page.fill("#id_lines-1-description", "Delivery")
    page.fill("#id_lines-1-quantity", "1")
    page.fill("#id_lines-1-price", "120.00")
    shoot(page, "1_clerk_captures")
    page.click("button[name=_save]")

    # then the bill is on its page, submitted for approval, in words and separated amounts
    expect(page).to_have_url(re.compile(r"/admin/payables/bill/\d+/change/$"))
    bill = Bill.objects.get(number="GX-2041")
    content = page.locator("#content")
    expect(content).to_contain_text("Pending approval")
    expect(content).to_contain_text("3,871.50 USD")
    shoot(page, "2_clerk_bill_submitted")
    assert bill.status == BillStatus.PENDING_APPROVAL
    assert bill.created_by == clerk
    # and the clerk who captured it has no Approve button
    expect(page.get_by_role("link", name="Approve…")).to_have_count(0)

    # when the approver logs in and opens the bill's Approve page
    page.context.clear_cookies()
    bill_path = f"/admin/payables/bill/{bill.pk}/change/"
    log_in_through(page, bill_path, username="adam", key=approver_key)
    entries = JournalEntry.objects.count()
    page.get_by_role("link", name="Approve…").click()

    # then the page shows the entry the approval posts, and nothing is posted yet
    confirm = page.locator("#confirm-action")
    expect(confirm).to_contain_text("What will be posted to the ledger")
    expect(page.locator("table.posting-preview").first).to_contain_text("3,871.50 USD")
    shoot(page, "3_approver_confirms")
    assert JournalEntry.objects.count() == entries
    assert not Approval.objects.filter(kind="bill", object_id=bill.pk).exists()

    # when they approve with a comment
    page.fill("#id_comment", "Chairs received")
    page.get_by_role("button", name="Approve").click()

    # then the bill is approved and posted, back on its page with the decision listed
    expect(page).to_have_url(re.compile(re.escape(bill_path) + "$"))
    expect(page.locator("#content")).to_contain_text("Chairs received")
    shoot(page, "4_approver_done")
    bill.refresh_from_db()
    assert bill.status == BillStatus.APPROVED
    assert bill.journal_entry_id is not None
    assert Approval.objects.get(kind="bill", object_id=bill.pk).user == approver
