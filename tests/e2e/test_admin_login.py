from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django_otp.oath import totp
from playwright.sync_api import Page, expect

from core.accounts import mfa_enroll
from core.otp import RecoveryCode
from core.roles import Role

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

PASSWORD = "correct horse battery staple"
# Looked at by hand when the login page changes.
SCREENSHOT = Path(tempfile.gettempdir()) / "admin_login.png"
INVALID_CODE = "Invalid token. Please make sure you have entered it correctly."


@pytest.fixture
def staff(make_user: Callable[..., User]) -> User:
    return make_user(Role.FINANCE_ADMIN, username="erin", mfa=False)


def log_in(page: Page, *, username: str, password: str, code: str) -> None:
    page.goto("/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.fill("#id_otp_token", code)
    page.click("#login-form [type=submit]")


def test_login_with_password_and_authenticator_code_reaches_the_index(
    browser_page: Page, staff: User
) -> None:
    # given
    device, _ = mfa_enroll(user=staff)
    code = f"{totp(device.bin_key):06d}"

    # when
    log_in(browser_page, username="erin", password=PASSWORD, code=code)

    # then
    expect(browser_page).to_have_url(re.compile(r"/admin/$"))
    expect(browser_page.get_by_role("heading", name="Finance back-office")).to_be_visible()
    sidebar = browser_page.locator("#nav-sidebar, nav").first
    expect(sidebar).to_contain_text("Journal entries")


def test_wrong_code_stays_on_the_login_page_with_an_error(browser_page: Page, staff: User) -> None:
    # given
    device, _ = mfa_enroll(user=staff)
    wrong = f"{(totp(device.bin_key) + 1) % 1_000_000:06d}"

    # when
    log_in(browser_page, username="erin", password=PASSWORD, code=wrong)

    # then
    expect(browser_page.locator(".errornote")).to_have_text(INVALID_CODE)
    assert "/admin/login/" in browser_page.url
    expect(browser_page.locator("#id_otp_token")).to_be_visible()
    expect(browser_page.locator("#id_password")).to_have_value("")
    browser_page.screenshot(path=SCREENSHOT, full_page=True)


def test_recovery_code_works_once(browser_page: Page, staff: User) -> None:
    # given
    _, codes = mfa_enroll(user=staff)
    log_in(browser_page, username="erin", password=PASSWORD, code=codes[0])
    expect(browser_page.locator("h1").last).to_have_text("Finance back-office")
    browser_page.context.clear_cookies()

    # when
    log_in(browser_page, username="erin", password=PASSWORD, code=codes[0])

    # then
    expect(browser_page.locator(".errornote")).to_have_text(INVALID_CODE)
    assert "/admin/login/" in browser_page.url
    assert RecoveryCode.objects.filter(device__user=staff).count() == len(codes) - 1
