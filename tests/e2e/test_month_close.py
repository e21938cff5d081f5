"""A month closed in Chromium (issue 16 section 4): a controller signs in with the second
factor, opens Ledger > Month-end closes > "Close a month…", reads last month's checklist (one
item red: the ledger not yet checked since the month ended), has the check run, closes the
month, and finds it in the list locked through its last day. The checklist and the list are
photographed at 1280 px and 375 px ($E2E_SCREENSHOTS, or /tmp/month_close)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from django_otp.oath import totp
from playwright.sync_api import Page, expect

from core.accounts import mfa_enroll
from core.ledger.checks import ledger_check_run
from core.ledger.models import Account, MonthClose
from core.ledger.services import LineSpec, journal_post
from core.roles import Role

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

PASSWORD = "correct horse battery staple"


def _shots() -> Path:
    folder = Path(os.environ.get("E2E_SCREENSHOTS", "") or "/tmp/month_close")  # noqa: S108
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _photograph(page: Page, name: str) -> None:
    for width in (1280, 375):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(_shots() / f"{name}_{width}.png"), full_page=True)
        overflow = page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
        assert not overflow, f"{name} scrolls sideways at {width} px"
    page.set_viewport_size({"width": 1280, "height": 900})


def test_a_controller_closes_last_month(browser_page: Page, make_user: Callable[..., User]) -> None:
    # given last month's sales, and no ledger check since it ended
    last = (timezone.localdate().replace(day=1) - timedelta(days=1)).replace(day=1)
    cash, revenue = Account.objects.get(role="cash"), Account.objects.get(role="revenue")
    journal_post(
        lines=[
            LineSpec(cash, "USD", debit=Decimal("120.00")),
            LineSpec(revenue, "USD", credit=Decimal("120.00")),
        ],
        entry_date=last + timedelta(days=9),
        description="Sales",
    )
    controller = make_user(Role.CONTROLLER, username="carla", mfa=False)
    device, _ = mfa_enroll(user=controller)
    page = browser_page
    page.goto("/admin/")
    page.fill("#id_username", "carla")
    page.fill("#id_password", PASSWORD)
    page.fill("#id_otp_token", f"{totp(device.bin_key):06d}")
    page.click("#login-form [type=submit]")
    expect(page).to_have_url(re.compile(r"/admin/$"))

    # when the controller opens the close page: one item is missing, and the close is refused
    page.goto("/admin/ledger/monthclose/")
    page.get_by_role("link", name="Close a month…").click()
    close_page = page.url
    expect(page.get_by_text(f"Close {last:%B %Y}").first).to_be_visible()
    expect(page.get_by_text("Run the ledger check after the month")).to_be_visible()
    _photograph(page, "month_close_red")
    page.get_by_role("button", name=f"Close {last:%B %Y}").click()
    expect(page.get_by_text("cannot be closed")).to_be_visible()
    assert not MonthClose.objects.exists()

    # and once the check has run, everything is done and the month closes
    ledger_check_run()
    page.goto(close_page)
    expect(page.get_by_text("Missing")).to_have_count(0)
    _photograph(page, "month_close_green")
    page.get_by_role("button", name=f"Close {last:%B %Y}").click()

    # then the list shows it, locked through the month's last day
    expect(page.get_by_text(f"{last:%B %Y} closed: the books are locked")).to_be_visible()
    close = MonthClose.objects.get()
    assert close.closed_by == controller
    expect(page.locator("#result_list")).to_contain_text(f"{last:%B %Y}")
    _photograph(page, "month_close_list")
