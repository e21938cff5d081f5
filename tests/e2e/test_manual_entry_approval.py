"""A large manual journal entry approved in Chromium (issue 15 hole 5): an integration posts
50,000 through the API, it waits; a controller signs in with the second factor, finds it under
Ledger > Manual entries filtered to those pending, opens it, approves it on the confirmation
page, and the entry it became is linked. The list and the confirmation page are photographed
at 1280 px and 375 px ($E2E_SCREENSHOTS, or /tmp/manual_entries)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django_otp.oath import totp
from playwright.sync_api import Page, expect

from core.accounts import mfa_enroll
from core.ledger.enums import ManualEntryStatus
from core.ledger.models import ManualEntry
from core.roles import Role
from tests.conftest import token_client, token_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

PASSWORD = "correct horse battery staple"


def _shots() -> Path:
    folder = Path(os.environ.get("E2E_SCREENSHOTS", "") or "/tmp/manual_entries")  # noqa: S108
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_a_controller_approves_a_waiting_manual_entry(
    browser_page: Page, make_user: Callable[..., User]
) -> None:
    # given a 50,000 manual entry sent by an integration, waiting for a person
    erp = token_client(token_for(make_user(Role.INTEGRATION, mfa=False)))
    sent = erp.post(
        "/api/ledger/journal-entries",
        {
            "entry_date": "2026-11-30",
            "description": "Year-end bonus accrual",
            "lines": [
                {"account": "6000", "currency": "USD", "debit": "50000.00"},
                {"account": "1900", "currency": "USD", "credit": "50000.00"},
            ],
        },
        format="json",
    )
    assert sent.status_code == 202, sent.content
    manual_id = sent.json()["id"]
    controller = make_user(Role.CONTROLLER, username="carla", mfa=False)
    device, _ = mfa_enroll(user=controller)
    page = browser_page

    # when the controller signs in and opens the pending manual entries
    page.goto("/admin/")
    page.fill("#id_username", "carla")
    page.fill("#id_password", PASSWORD)
    page.fill("#id_otp_token", f"{totp(device.bin_key):06d}")
    page.click("#login-form [type=submit]")
    expect(page).to_have_url(re.compile(r"/admin/$"))
    page.goto("/admin/ledger/manualentry/?status__exact=pending_approval")
    row = page.get_by_role("link", name=re.compile(f"ME-{manual_id}"))
    expect(row).to_be_visible()
    expect(page.locator("#result_list")).to_contain_text("50,000.00")
    for width in (1280, 375):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(_shots() / f"manual_entries_{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    row.click()
    page.get_by_role("link", name="Approve…").click()
    expect(page.get_by_text("Records your approval and posts the entry")).to_be_visible()
    for width in (1280, 375):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(_shots() / f"manual_entry_approve_{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.get_by_role("button", name="Approve and post").click()

    # then it is posted, and the page links the journal entry it became
    manual = ManualEntry.objects.get(pk=manual_id)
    assert manual.status == ManualEntryStatus.POSTED
    assert manual.decided_by == controller
    expect(page.get_by_text(f"approved and posted as JE-{manual.journal_entry_id}")).to_be_visible()
