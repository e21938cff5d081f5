"""Reconciliation admin screens in a browser: the suggestion queue accepted in bulk, the
exceptions queue resolved with a note, and a controller's report and sign-off."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from django_otp.oath import totp
from playwright.sync_api import Page, expect

from billing.services.customers import customer_create
from billing.services.invoices import LineInput, invoice_create
from core.accounts import mfa_enroll
from core.ledger.enums import AccountRole
from core.ledger.models import Account
from core.ledger.services import LineSpec, journal_post
from core.roles import Role
from reconciliation import matching
from reconciliation.enums import ExceptionStatus, MatchStatus, MatchTargetKind, SignOffStatus
from reconciliation.models import (
    BankAccount,
    Match,
    ReconciliationException,
    SignOff,
    Statement,
    StatementLine,
)
from reconciliation.services import bank_account_create
from reconciliation.services_exceptions import exceptions_detect
from reconciliation.services_matching import proposals_store

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

PASSWORD = "correct horse battery staple"
D = Decimal
LAST_MONTH_END = timezone.localdate().replace(day=1) - timedelta(days=1)
LAST_MONTH_START = LAST_MONTH_END.replace(day=1)


def log_in(page: Page, user: User) -> None:
    device, _ = mfa_enroll(user=user)
    page.goto("/admin/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.fill("#id_otp_token", f"{totp(device.bin_key):06d}")
    page.click("#login-form [type=submit]")
    expect(page.get_by_role("heading", name="Finance back-office")).to_be_visible()


def bank_with_lines(admin: User, amounts: list[str]) -> tuple[BankAccount, list[StatementLine]]:
    """A USD account, its opening balance booked, and last month's statement of ``amounts``."""
    account = bank_account_create(actor=admin, name="US operating", currency="USD")
    journal_post(
        lines=[
            LineSpec(account.ledger_account, "USD", debit=D("100.00")),
            LineSpec(Account.objects.get(role=AccountRole.EQUITY), "USD", credit=D("100.00")),
        ],
        entry_date=LAST_MONTH_START - timedelta(days=1),
    )
    total = sum((D(a) for a in amounts), D(0))
    st = Statement.objects.create(
        bank_account=account, format="csv", currency="USD", control="balances",
        opening_balance=D("100.00"), closing_balance=D("100.00") + total,
        opening_date=LAST_MONTH_START, closing_date=LAST_MONTH_END,
        file_sha256="c" * 64, fingerprint="d" * 64,
    )  # fmt: skip
    lines = [
        StatementLine.objects.create(
            statement=st,
            bank_account=account,
            position=n,
            booking_date=LAST_MONTH_START + timedelta(days=n),
            amount=D(amount),
            currency="USD",
            description=f"line {n}",
            fingerprint=f"{n:064d}",
        )
        for n, amount in enumerate(amounts, start=1)
    ]
    return account, lines


def test_suggestions_accepted_in_bulk_and_an_exception_resolved(
    browser_page: Page, make_user: Callable[..., User], finance_admin: User
) -> None:
    # given two suggestions of payments for two invoices, and an unknown line (an exception)
    clerk = make_user(Role.AR_CLERK, username="carol", mfa=False)
    account, lines = bank_with_lines(finance_admin, ["40.00", "60.00", "7.00"])
    customer = customer_create(actor=clerk, name="Acme", email="a@acme.example", currency="USD")
    invoices = [
        invoice_create(
            actor=clerk,
            customer_id=customer.pk,
            issue=True,
            lines=[LineInput(description="S", quantity=D(1), unit_price=D(a), tax_rate=D(0))],
        )
        for a in ("40.00", "60.00")
    ]
    proposals_store(
        account=account,
        proposals=[
            matching.Proposal(
                (line.pk,),
                (matching.Target(MatchTargetKind.INVOICE, inv.pk, line.amount),),
                D("0.80"),
                "fuzzy_name",
                "amount equals; name looks alike",
                line.amount,
                "USD",
            )
            for line, inv in zip(lines[:2], invoices, strict=True)
        ],
    )
    exceptions_detect(bank_account_id=account.pk, today=timezone.localdate())
    page = browser_page
    log_in(page, clerk)

    # when the clerk selects every suggestion and accepts them
    page.goto("/admin/reconciliation/match/?status__exact=proposed")
    page.check("#action-toggle")
    page.select_option("select[name=action]", "accept_selected")
    page.click("button[name=index]")

    # then a confirmation page lists them, and nothing is applied yet
    expect(page.locator("#confirm-action")).to_contain_text("posts it to the ledger")
    assert set(Match.objects.values_list("status", flat=True)) == {MatchStatus.PROPOSED}
    # when they confirm
    page.click("button[name=confirm]")

    # then both are applied: the invoices are paid
    expect(page.locator("ul.messagelist")).to_contain_text("2 accepted.")
    assert set(Match.objects.values_list("status", flat=True)) == {MatchStatus.APPLIED}
    for invoice in invoices:
        invoice.refresh_from_db()
        assert invoice.status == "paid"

    # when the clerk resolves the unknown line's exception with a note
    exception = ReconciliationException.objects.get(line=lines[2])
    page.goto("/admin/reconciliation/reconciliationexception/")
    page.check(f"input[name=_selected_action][value='{exception.pk}']")
    page.select_option("select[name=action]", label="Resolve\u2026")
    page.click("button[name=index]")
    page.fill("textarea", "Refund of a card deposit; booked by treasury")
    page.click("input[type=submit].default")

    # then it is resolved with the note and who did it
    exception.refresh_from_db()
    assert exception.status == ExceptionStatus.RESOLVED
    assert exception.resolution_note == "Refund of a card deposit; booked by treasury"
    assert exception.resolved_by == clerk


def test_controller_reads_the_report_and_signs_the_month_off(
    browser_page: Page, make_user: Callable[..., User], finance_admin: User
) -> None:
    # given last month's statement with a bank fee not booked yet
    controller = make_user(Role.CONTROLLER, username="cora", mfa=False)
    account, _ = bank_with_lines(finance_admin, ["-5.00"])
    page = browser_page
    log_in(page, controller)

    # when the controller opens the report for last month
    page.goto("/admin/reconciliation/signoff/")
    page.click("text=Reconciliation report and sign-off")
    page.select_option("#id_bank_account", str(account.pk))
    page.fill("#id_period_start", LAST_MONTH_START.isoformat())
    page.fill("#id_period_end", LAST_MONTH_END.isoformat())
    page.click("input[value='Show report']")

    # then the fee is the reconciling item and nothing is unexplained
    expect(page.locator("td.unexplained")).to_have_text("0.00")
    expect(page.locator("#content")).to_contain_text("-5.00")

    # when they sign it off with a note
    page.fill("#id_note", "Fee to be booked")
    page.click(f"input[value='Sign off through {LAST_MONTH_END.isoformat()}']")
    # then a confirmation page says what it locks, and nothing is signed off yet
    expect(page.locator("#confirm-action")).to_contain_text("cannot be changed")
    assert not SignOff.objects.exists()
    # when they confirm
    page.click(f"button:has-text('Sign off through {LAST_MONTH_END.isoformat()}')")

    # then the sign-off page shows the report as signed, and the period is locked
    expect(page.locator("ul.messagelist")).to_contain_text("the period is locked")
    expect(page.locator("#content")).to_contain_text("Report as signed")
    sign_off = SignOff.objects.get()
    assert (sign_off.status, sign_off.signed_by, sign_off.note) == (
        SignOffStatus.SIGNED,
        controller,
        "Fee to be booked",
    )
    assert sign_off.period_lock is not None
    assert sign_off.period_lock.lock_date == LAST_MONTH_END
