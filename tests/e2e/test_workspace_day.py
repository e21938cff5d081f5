"""The rest of a clerk's day in the workspace, in Chromium at 1280 px, on the demo data:
add a customer (billed in the company's currency unless another is picked), export the
invoice list to XLSX and open it, and accept the bank's suggested match from its own page.
(Invoicing, payments and credit notes: test_billing_workspace.py; the AP clerk's and the
approver's day: test_payables_workspace.py.)"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from openpyxl import load_workbook
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from billing.models import Customer, Invoice
from core.roles import Role
from reconciliation.enums import MatchStatus
from reconciliation.models import Match
from tests.conftest import verified_client

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def _shots() -> Path:
    folder = Path(os.environ.get("E2E_SCREENSHOTS", "") or "/tmp/workspace_day")  # noqa: S108
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def clerk_page(browser_page: Page, live_server: LiveServer, make_user: Callable[..., User]) -> Page:
    """The demo data and a finance administrator's verified session (the login with the
    second factor is test_admin_login.py's)."""
    call_command("seed_demo", "--scale", "0", stdout=io.StringIO())
    user = make_user(Role.FINANCE_ADMIN)
    session = verified_client(user).cookies["sessionid"].value
    browser_page.context.add_cookies(
        [{"name": "sessionid", "value": session, "url": live_server.url}]
    )
    browser_page.set_viewport_size({"width": 1280, "height": 900})
    return browser_page


def test_a_new_customer_is_billed_in_the_company_currency_by_default(clerk_page: Page) -> None:
    page = clerk_page

    # when the clerk adds a customer with a name and an email only
    page.goto("/admin/billing/customer/add/")
    expect(page.locator("#id_currency")).to_have_value("USD")
    page.fill("#id_name", "Harbour Freight Partners")
    page.fill("#id_email", "ap@harbour.example")
    page.screenshot(path=str(_shots() / "customer_add.png"), full_page=True)
    page.click("[name=_save]")

    # then the customer exists, in USD
    expect(page.locator("ul.messagelist")).to_contain_text("Harbour Freight Partners")
    customer = Customer.objects.get(name="Harbour Freight Partners")
    assert customer.currency == "USD"


def test_the_filtered_invoice_list_exports_to_a_workbook_that_opens(clerk_page: Page) -> None:
    page = clerk_page
    overdue = Invoice.objects.filter(status="open").exclude(number=None).count()
    assert overdue, "the demo has open invoices"

    # when the clerk filters to open invoices, exports and downloads the XLSX
    page.goto("/admin/billing/invoice/?status__exact=open")
    page.get_by_role("link", name=re.compile("Export")).click()
    expect(page).to_have_url(re.compile(r"/admin/billing/invoice/export/\?status__exact=open"))
    page.select_option("#id_format", label="xlsx")
    page.screenshot(path=str(_shots() / "invoice_export.png"), full_page=True)
    with page.expect_download() as download:
        page.locator("form [type=submit]").last.click()
    body = Path(download.value.path()).read_bytes()

    # then the workbook holds the open invoices, with words and numbers
    sheet = load_workbook(io.BytesIO(body)).active
    header = [cell.value for cell in sheet[1]]
    rows = [dict(zip(header, (c.value for c in row), strict=True)) for row in sheet.iter_rows(2)]
    assert len(rows) == overdue
    assert {row["Status"] for row in rows} == {"Open"}
    assert all(isinstance(row["Total"], int | float) for row in rows)


def test_a_suggested_match_is_accepted_from_its_own_page(clerk_page: Page) -> None:
    page = clerk_page
    suggestion = Match.objects.filter(status=MatchStatus.PROPOSED).first()
    assert suggestion is not None, "the demo leaves a suggestion to decide"

    # when the clerk opens the suggestion and accepts it on its confirmation page
    page.goto(f"/admin/reconciliation/match/{suggestion.pk}/change/")
    page.get_by_role("link", name=re.compile("Accept")).first.click()
    expect(page.locator("#confirm-action")).to_contain_text("What will be posted to the ledger")
    page.screenshot(path=str(_shots() / "suggestion_accept.png"), full_page=True)
    page.click("#confirm-action [name=confirm]")

    # then the match is applied
    expect(page.locator("ul.messagelist")).to_be_visible()
    suggestion.refresh_from_db()
    assert suggestion.status == MatchStatus.APPLIED
