"""The approvers' screens in a real browser: OTP login, approve one order, reject another
with a comment, maker-checker on the requester's own order, and phone width."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django_otp.oath import totp
from playwright.sync_api import Page, expect

from core.accounts import mfa_enroll
from payables.enums import PurchaseOrderStatus as S
from payables.models import Approval, PurchaseOrder
from payables.services.orders import LineInput, purchase_order_create, purchase_order_submit
from payables.services.vendors import BankDetails, vendor_activate, vendor_create

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

PASSWORD = "correct horse battery staple"
# Looked at by hand when the screens change: a decided order at phone width.
SCREENSHOT = Path(tempfile.gettempdir()) / "approvals_phone.png"


def approver_with_authenticator(
    make_user: Callable[..., User], username: str
) -> tuple[User, bytes]:
    user = make_user("approver", username=username, mfa=False)
    device, _ = mfa_enroll(user=user)
    return user, device.bin_key


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
def clerk(make_user: Callable[..., User]) -> User:
    return make_user("ap_clerk")


@pytest.fixture
def make_order(make_user: Callable[..., User], clerk: User) -> Callable[..., PurchaseOrder]:
    """``make_order("5000.00", requester=...)``: a submitted order to an active vendor."""
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

    def make(price: str, *, requester: User | None = None) -> PurchaseOrder:
        who = requester or clerk
        order = purchase_order_create(
            actor=who,
            vendor_id=vendor.pk,
            currency="USD",
            lines=[
                LineInput(description="Laptops", quantity=Decimal(1), unit_price=Decimal(price))
            ],
        )
        return purchase_order_submit(order_id=order.pk, actor=who)

    return make


def no_horizontal_scroll(page: Page) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= 375"))


def test_approver_approves_one_order_and_rejects_another(
    browser_page: Page, make_user, make_order
) -> None:
    # given two orders waiting for one approver, and one requested by another approver
    page = browser_page
    _, key = approver_with_authenticator(make_user, "alan")
    rita, _ = approver_with_authenticator(make_user, "rita")
    first = make_order("5000.00")
    second = make_order("6000.00")
    make_order("7000.00", requester=rita)

    # when the approver signs in with an authenticator code
    log_in_through(page, "/approvals/", username="alan", key=key)

    # then the inbox lists the three orders
    cards = page.locator("ul.inbox li.card")
    expect(cards).to_have_count(3)
    expect(page.locator("ul.inbox")).to_contain_text("5,000.00 USD")

    # when they approve the first with a comment
    page.click(f"li[data-kind=purchase_order][data-id='{first.pk}'] a")
    expect(page.locator("h1")).to_contain_text(first.number)
    page.fill("#id_comment", "Within budget")
    page.click("#approve")

    # then the page shows it approved, with their decision
    expect(page.locator("#status")).to_have_text("Approved")
    expect(page.locator(".message.success")).to_have_text(f"You approved {first.number}.")
    expect(page.locator("#decisions")).to_contain_text("Within budget")
    expect(page.locator("#approve")).to_have_count(0)

    # when they go back and reject the second with a comment
    page.click("text=Waiting for you")
    expect(cards).to_have_count(2)
    page.click(f"li[data-kind=purchase_order][data-id='{second.pk}'] a")
    page.fill("#id_comment", "Use the framework contract")
    page.click("#reject")

    # then it is rejected with the comment
    expect(page.locator("#status")).to_have_text("Rejected")
    expect(page.locator("#decisions")).to_contain_text("Use the framework contract")
    assert PurchaseOrder.objects.get(pk=first.pk).status == S.APPROVED
    assert PurchaseOrder.objects.get(pk=second.pk).status == S.REJECTED
    assert Approval.objects.get(object_id=second.pk).comment == "Use the framework contract"

    # and at phone width neither the document nor the inbox scrolls sideways
    page.set_viewport_size({"width": 375, "height": 740})
    page.reload()
    expect(page.locator("#status")).to_be_visible()
    assert no_horizontal_scroll(page)
    page.screenshot(path=SCREENSHOT, full_page=True)
    page.goto("/approvals/")
    expect(cards).to_have_count(1)
    assert no_horizontal_scroll(page)


def test_requester_sees_no_approve_button_on_their_own_order(
    browser_page: Page, make_user, make_order
) -> None:
    # given an approver who requested an order, and one by someone else
    page = browser_page
    rita, key = approver_with_authenticator(make_user, "rita")
    own = make_order("7000.00", requester=rita)
    other = make_order("3000.00")

    # when they sign in and open their own order
    path = f"/approvals/purchase-orders/{own.pk}/"
    log_in_through(page, path, username="rita", key=key)

    # then there is no approve or reject button, and the reason is given
    expect(page.locator("#status")).to_have_text("Pending approval")
    expect(page.locator("#approve")).to_have_count(0)
    expect(page.locator("#reject")).to_have_count(0)
    expect(page.locator("#why-not")).to_have_text(
        "You requested it: someone else must decide on it."
    )
    # and their inbox holds only the other order
    page.goto("/approvals/")
    expect(page.locator("ul.inbox li.card")).to_have_count(1)
    expect(page.locator("ul.inbox")).to_contain_text(other.number)
    expect(page.locator("ul.inbox")).not_to_contain_text(own.number)
