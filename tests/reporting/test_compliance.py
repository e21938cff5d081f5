"""Compliance audit reports (reporting.compliance): each report over a small world built
through the real services, its flags, and the production log of its downloads."""

from __future__ import annotations

import csv
import hashlib
import io
import subprocess
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal as D

import pytest
import time_machine
from axes.models import AccessAttempt, AccessFailureLog
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse
from django.utils import timezone
from openpyxl import load_workbook

from billing.services.credit import customer_credit_set
from billing.services.customers import customer_create
from billing.services.tax_rates import tax_rate_set
from core.ledger.enums import AccountRole
from core.ledger.manual import manual_entry_submit
from core.ledger.models import Account
from core.ledger.services import journal_reverse
from core.roles import Role
from payables.enums import ApprovalDecision, DocumentKind
from payables.models import Approval, PurchaseOrder
from payables.services.orders import (
    LineInput,
    purchase_order_approve,
    purchase_order_create,
    purchase_order_submit,
)
from payables.services.vendors import (
    BankDetails,
    vendor_activate,
    vendor_bank_change_approve,
    vendor_bank_change_request,
    vendor_create,
)
from reconciliation.models import Statement
from reconciliation.services import bank_account_create
from reconciliation.services_close import sign_off_create, sign_off_reopen
from reporting.compliance import (
    EXCEPTION,
    InvalidPeriod,
    approval_findings,
    approvals_table,
    bank_changes_table,
    journal_entries_table,
    logins_table,
    master_data_table,
    period_bounds,
    sign_offs_table,
    users_table,
)
from reporting.models import ReportProduction
from reporting.report_files import Amount, ReportTable, cell_text

pytestmark = pytest.mark.django_db

INDEX = "admin:reporting_compliance"
REPORT = "admin:reporting_compliance_report"


def _today() -> date:
    return timezone.localdate()


def _period() -> tuple[date, date]:
    return _today(), _today()


def _by_header(table: ReportTable) -> list[dict[str, str]]:
    return [
        {h: cell_text(c) for h, c in zip(table.headers, row.cells, strict=True)}
        for row in table.rows
    ]


def _order(requester: User, vendor_id: int, price: str) -> PurchaseOrder:
    order = purchase_order_create(
        actor=requester,
        vendor_id=vendor_id,
        currency="USD",
        lines=[LineInput(description="Chairs", quantity=D(1), unit_price=D(price))],
    )
    return purchase_order_submit(order_id=order.pk, actor=requester)


@pytest.fixture
def people(make_user: Callable[..., User]) -> dict[str, User]:
    return {
        "clerk": make_user(Role.AP_CLERK, username="carla-clerk"),
        "approver": make_user(Role.APPROVER, username="arne-approver"),
        "controller": make_user(Role.CONTROLLER, username="cora-controller"),
        "controller2": make_user(Role.CONTROLLER, username="conrad-controller"),
        "admin": make_user(Role.FINANCE_ADMIN, username="fiona-admin"),
    }


@pytest.fixture
def vendor_id(people: dict[str, User]) -> int:
    vendor = vendor_create(
        actor=people["clerk"],
        name="Globex Supplies",
        email="globex@vendor.example",
        currency="USD",
        bank=BankDetails(
            account_holder="Globex", routing_number="011000015", account_number="123456789"
        ),
    )
    return vendor_activate(vendor_id=vendor.pk, actor=people["controller"]).pk


# ------------------------------------------------------------------------------ approvals


def test_approvals_show_requester_and_approver_and_flag_the_exceptions(people, vendor_id):
    # given an order of 1,500.00 approved by another person through the service
    clean = _order(people["clerk"], vendor_id, "1500.00")
    purchase_order_approve(order_id=clean.pk, actor=people["approver"], comment="ok")
    # and a legacy order whose approval row names its own requester (bypassed control)
    legacy = _order(people["clerk"], vendor_id, "2000.00")
    Approval.objects.create(
        kind=DocumentKind.PURCHASE_ORDER,
        object_id=legacy.pk,
        decision=ApprovalDecision.APPROVED,
        role="approver",
        user=people["clerk"],
        version_hash="0" * 64,
    )
    # and one where the controller approved in person and again through a delegate
    doubled = _order(people["clerk"], vendor_id, "3000.00")
    for role, user, behalf in (
        ("approver", people["controller"], None),
        ("controller", people["controller2"], people["controller"]),
    ):
        Approval.objects.create(
            kind=DocumentKind.PURCHASE_ORDER,
            object_id=doubled.pk,
            decision=ApprovalDecision.APPROVED,
            role=role,
            user=user,
            on_behalf_of=behalf,
            version_hash="0" * 64,
        )
    # when the approvals report of today is produced
    table = approvals_table(*_period())
    rows = _by_header(table)
    # then the clean order: requester differs, no flag, the amount in its currency
    by_number = {}
    for row in rows:
        by_number.setdefault(row["Document"], []).append(row)
    [clean_row] = by_number[clean.number]
    assert clean_row["Requester"] == "carla-clerk"
    assert clean_row["Approver"] == "arne-approver"
    assert clean_row["Amount"] == "1,500.00 USD"
    assert clean_row["Requester differs from every approver"] == "yes"
    assert clean_row["Flag"] == ""
    # and the legacy order is an EXCEPTION: the requester approved
    [legacy_row] = by_number[legacy.number]
    assert legacy_row["Requester differs from every approver"] == "NO"
    assert legacy_row["Flag"] == f"{EXCEPTION}: requester approved"
    # and the doubled one: two rows, both flagged for the person counted twice
    doubled_rows = by_number[doubled.number]
    assert [r["Approver"] for r in doubled_rows] == ["cora-controller", "conrad-controller"]
    assert doubled_rows[1]["On behalf of"] == "cora-controller"
    assert {r["Flag"] for r in doubled_rows} == {f"{EXCEPTION}: same person counted twice"}
    assert ("Documents", "3") in table.parameters
    assert ("Exceptions", "2") in table.parameters


def test_approvals_outside_the_period_are_left_out(people, vendor_id):
    # given an order approved today
    order = _order(people["clerk"], vendor_id, "1500.00")
    purchase_order_approve(order_id=order.pk, actor=people["approver"])
    # when the report covers yesterday only
    yesterday = _today() - timedelta(days=1)
    table = approvals_table(yesterday, yesterday)
    # then it is empty
    assert table.rows == []


def test_approval_findings_rules() -> None:
    # given approvals as (user, on behalf of)
    def approvals(*pairs: tuple[int, int | None]) -> list[Approval]:
        return [Approval(user_id=u, on_behalf_of_id=b) for u, b in pairs]

    # then
    assert approval_findings(1, approvals((2, None), (3, None))) == []
    assert approval_findings(1, approvals((2, 1))) == ["requester approved"]
    assert approval_findings(None, approvals((2, None))) == ["requester not recorded"]
    assert approval_findings(1, approvals((2, None), (3, 2))) == ["same person counted twice"]


# ------------------------------------------------------------------- bank changes, entries


def test_bank_change_shows_who_requested_and_who_approved(people, vendor_id):
    # given a change requested by the finance admin and approved by the approver
    change = vendor_bank_change_request(
        vendor_id=vendor_id,
        bank=BankDetails(routing_number="021000021", account_number="99887766"),
        reason="New bank",
        actor=people["admin"],
    )
    vendor_bank_change_approve(change_id=change.pk, actor=people["approver"], comment="called")
    # when
    [row] = _by_header(bank_changes_table(*_period()))
    # then both people are named, the new number is masked, nothing is flagged
    assert row["Vendor"] == "Globex Supplies"
    assert row["Requested by"] == "fiona-admin"
    assert row["Decided by"] == "arne-approver"
    assert row["Status"] == "Approved"
    assert row["Comment"] == "called"
    assert "99887766" not in row["New details (masked)"]
    assert "7766" in row["New details (masked)"]
    assert row["Flag"] == ""


def test_manual_entry_and_its_reversal_with_their_authors(people):
    # given a manual entry of 120.00 by one controller, reversed by another
    codes = {a.role: a.code for a in Account.objects.exclude(role=None)}
    manual = manual_entry_submit(
        actor=people["controller"],
        entry_date=_today(),
        description="Reclass fees",
        lines=[
            {"account": codes[AccountRole.BANK_FEES], "currency": "USD", "debit": "120.00"},
            {"account": codes[AccountRole.EXPENSES], "currency": "USD", "credit": "120.00"},
        ],
    )
    entry = manual.journal_entry
    reversal = journal_reverse(
        entry_id=entry.pk, actor=people["controller2"], reason="Wrong account"
    )
    # when
    rows = _by_header(journal_entries_table(*_period()))
    # then
    assert [r["Entry"] for r in rows] == [f"JE-{entry.pk}", f"JE-{reversal.pk}"]
    manual, reversing = rows
    assert manual["Kind"] == "Manual"
    assert manual["Posted by"] == "cora-controller"
    assert manual["Amount (debits)"] == "120.00 USD"
    assert manual["Reversed by"] == f"JE-{reversal.pk} by conrad-controller"
    assert reversing["Kind"] == f"Reversal of JE-{entry.pk}"
    assert reversing["Posted by"] == "conrad-controller"
    assert reversing["Original posted by"] == "cora-controller"


# ---------------------------------------------------------------------------- master data


def test_master_data_changes_show_before_and_after_per_field(people):
    # given a customer whose credit limit is set, and a tax rate created then changed
    customer = customer_create(
        actor=people["admin"], name="Initech", email="ap@initech.example", currency="USD"
    )
    customer_credit_set(
        actor=people["admin"], customer_id=customer.pk, credit_limit=D("5000"), credit_hold=False
    )
    tax_rate_set(actor=people["admin"], jurisdiction="US-CA", name="California", rate=D("0.0725"))
    tax_rate_set(actor=people["admin"], jurisdiction="US-CA", name="California", rate=D("0.0775"))
    # when
    rows = _by_header(master_data_table(*_period()))
    # then each creation is a row and each edit one row per changed field, with labels
    changes = [
        (r["Record"], r["Name"].split(" (#")[0], r["Change"], r["Field"], r["Before"], r["After"])
        for r in rows
    ]
    assert ("Customer", "Initech", "Created", "", "", "") in changes
    assert ("Customer", "Initech", "Changed", "Credit limit", "(empty)", "5000") in changes
    assert ("Tax rate", "US-CA", "Created", "", "", "") in changes
    assert ("Tax rate", "US-CA", "Changed", "Rate", "0.0725", "0.0775") in changes
    # and nothing else of those records changed (the name was given again, unchanged)
    assert len([c for c in changes if c[0] == "Tax rate" and c[2] == "Changed"]) == 1
    assert len([c for c in changes if c[0] == "Customer" and c[2] == "Changed"]) == 1


def test_master_data_before_comes_from_a_version_older_than_the_period(people):
    # given a tax rate created yesterday, changed today
    with time_machine.travel(timezone.now() - timedelta(days=1)):
        tax_rate_set(actor=people["admin"], jurisdiction="DE", name="Germany", rate=D("0.19"))
    tax_rate_set(actor=people["admin"], jurisdiction="DE", name="Germany", rate=D("0.16"))
    # when today's report is produced
    rows = _by_header(master_data_table(*_period()))
    # then only today's edit is listed, its "before" from yesterday's version
    tax = [r for r in rows if r["Record"] == "Tax rate"]
    assert [(r["Change"], r["Field"], r["Before"], r["After"]) for r in tax] == [
        ("Changed", "Rate", "0.19", "0.16")
    ]


# ----------------------------------------------------------------------- users and logins


def test_users_without_a_confirmed_device_are_flagged(make_user):
    # given a clerk with a confirmed device and one without
    make_user(Role.AR_CLERK, username="alice-mfa")
    make_user(Role.AR_CLERK, username="bob-nomfa", mfa=False)
    # when
    table = users_table(*_period())
    rows = {r["User"]: r for r in _by_header(table)}
    # then
    assert rows["alice-mfa"]["Flag"] == ""
    assert rows["alice-mfa"]["Confirmed second factor"] == "1 authenticator app(s)"
    assert rows["alice-mfa"]["Roles"] == "ar_clerk"
    assert rows["bob-nomfa"]["Flag"] == f"{EXCEPTION}: no confirmed device"
    assert rows["bob-nomfa"]["Confirmed second factor"] == "none"
    assert ("Active users without a confirmed device", "1") in table.parameters


def test_role_changes_of_the_period_come_from_the_admin_log(make_user):
    # given a superuser who changed a clerk's groups in the workspace today
    boss = User.objects.create_superuser("sam-super", "sam@example.com", "pw-123-long-enough")
    clerk = make_user(Role.AR_CLERK, username="eve-clerk")
    LogEntry.objects.create(
        user=boss,
        content_type=ContentType.objects.get_for_model(User),
        object_id=str(clerk.pk),
        object_repr=clerk.username,
        action_flag=CHANGE,
        change_message='[{"changed": {"fields": ["Groups"]}}]',
    )
    # when
    rows = {r["User"]: r for r in _by_header(users_table(*_period()))}
    # then the clerk's row says who changed what; the superuser has no device: flagged
    assert "sam-super changed: Changed Groups." in rows["eve-clerk"]["Changes in the period"]
    assert rows["sam-super"]["Superuser"] == "yes"
    assert rows["sam-super"]["Flag"] == f"{EXCEPTION}: no confirmed device"


def test_failed_and_locked_out_logins(client, settings):
    # given a failed login through the login page, and axes' records of a lock-out
    User.objects.create_user(username="dora", password="right password 123")
    client.post(
        reverse("admin:login"),
        {"username": "dora", "password": "wrong", "otp_token": "000000"},
        REMOTE_ADDR="198.51.100.7",
    )
    AccessAttempt.objects.create(
        username="mallory",
        ip_address="203.0.113.9",
        user_agent="curl/8",
        http_accept="*/*",
        path_info="/admin/login/",
        get_data="",
        post_data="",
        failures_since_start=settings.AXES_FAILURE_LIMIT,
    )
    AccessFailureLog.objects.create(
        username="mallory",
        ip_address="203.0.113.9",
        user_agent="curl/8",
        http_accept="*/*",
        path_info="/admin/login/",
        locked_out=True,
    )
    # when
    table = logins_table(*_period())
    rows = _by_header(table)
    # then dora's failure is there, not locked; mallory is locked out in both records
    dora = [r for r in rows if r["Username"] == "dora"]
    assert dora
    assert dora[0]["Failures"] == "1"
    assert dora[0]["Locked out"] == "no"
    assert dora[0]["Address"] == "198.51.100.7"
    mallory = {r["Source"]: r for r in rows if r["Username"] == "mallory"}
    assert mallory["Attempt record"]["Locked out"] == "yes"
    assert mallory["Attempt record"]["Failures"] == str(settings.AXES_FAILURE_LIMIT)
    assert mallory["Failure log"]["Locked out"] == "yes"
    assert ("Locked out", "2") in table.parameters


# ------------------------------------------------------------------------------ sign-offs


def test_sign_off_and_reopening(people):
    # given a bank account with nothing to reconcile, last month signed off then reopened
    account = bank_account_create(actor=people["admin"], name="US operating", currency="USD")
    end = _today().replace(day=1) - timedelta(days=1)
    Statement.objects.create(
        bank_account=account, format="csv", currency="USD", control="balances",
        opening_balance=D(0), closing_balance=D(0), opening_date=end.replace(day=1),
        closing_date=end, file_sha256="a" * 64, fingerprint="b" * 64,
    )  # fmt: skip
    sign_off = sign_off_create(
        actor=people["controller"],
        bank_account_id=account.pk,
        period_start=end.replace(day=1),
        period_end=end,
        note="All matched",
    )
    sign_off_reopen(actor=people["controller2"], sign_off_id=sign_off.pk, reason="Late fee")
    # when
    rows = _by_header(sign_offs_table(*_period()))
    # then one row per event with who and why
    assert [(r["Event"], r["By"], r["Note or reason"]) for r in rows] == [
        ("Signed off", "cora-controller", "All matched"),
        ("Reopened", "conrad-controller", "Late fee"),
    ]
    assert rows[0]["Bank account"] == "US operating"
    assert rows[0]["Period reconciled"] == f"{end.replace(day=1)} to {end}"
    assert rows[0]["Unexplained"] == "0.00 USD"


def test_a_reversed_or_overlong_period_is_refused() -> None:
    with pytest.raises(InvalidPeriod) as reversed_period:
        period_bounds(date(2026, 2, 1), date(2026, 1, 1))
    assert reversed_period.value.field == "date_to"
    with pytest.raises(InvalidPeriod):
        period_bounds(date(2025, 1, 1), date(2026, 1, 2))  # 367 days
    assert period_bounds(date(2024, 1, 1), date(2024, 12, 31))  # a leap year: 366
    start, end = period_bounds(date(2026, 1, 1), date(2026, 1, 1))
    assert end - start == timedelta(days=1)


# ------------------------------------------------------------------- screens and downloads


def _amount_cells(table: ReportTable) -> list[Amount]:
    return [c for row in table.rows for c in row.cells if isinstance(c, Amount)]


@pytest.fixture
def approved_order(people, vendor_id) -> PurchaseOrder:
    order = _order(people["clerk"], vendor_id, "1500.00")
    purchase_order_approve(order_id=order.pk, actor=people["approver"])
    return order


def _params(**extra: str) -> dict[str, str]:
    today = _today().isoformat()
    return {"date_from": today, "date_to": today, **extra}


def _rows_hash_from_csv(text: str, row_count: int) -> str:
    """The canonical rows recomputed from the CSV download: the header line (after the
    blank line that ends the parameters) and the next ``row_count`` lines."""
    lines = text.split("\r\n")
    header = lines.index("") + 1
    canonical = "\r\n".join(lines[header : header + 1 + row_count]) + "\r\n"
    return hashlib.sha256(canonical.encode()).hexdigest()


def test_csv_download_is_stamped_hashed_and_logged(client_for, approved_order):
    # given the controller
    client = client_for(Role.CONTROLLER)
    user = User.objects.get(pk=client.session["_auth_user_id"])
    # when they download the approvals report as CSV
    response = client.get(reverse(REPORT, args=["approvals"]), _params(export="csv"))
    # then the file parses, is stamped with who, when and the rows' hash
    assert response.status_code == 200
    text = response.content.decode()
    parsed = list(csv.reader(io.StringIO(text)))
    stamp = {row[0]: row[1] for row in parsed if len(row) == 2}
    assert stamp["Produced by"] == user.username
    header_at = parsed.index([])
    assert parsed[header_at + 1][:3] == ["Kind", "Document", "Amount"]
    assert parsed[header_at + 2][1] == approved_order.number
    assert parsed[header_at + 2][2] == "1500.00"
    # and one production row logs it with the file's and the rows' SHA-256
    production = ReportProduction.objects.get()
    assert production.code == "approvals"
    assert production.format == "csv"
    assert production.produced_by == user
    assert production.row_count == 1
    assert production.parameters == {
        "date_from": _params()["date_from"],
        "date_to": _today().isoformat(),
    }
    assert production.sha256 == hashlib.sha256(response.content).hexdigest()
    assert response["X-Content-SHA256"] == production.sha256
    assert production.rows_sha256 == _rows_hash_from_csv(text, 1)
    assert stamp["SHA-256 of the report's rows"] == production.rows_sha256


def test_xlsx_and_pdf_carry_the_same_rows_hash(client_for, approved_order, tmp_path):
    # given the auditor
    client = client_for(Role.AUDITOR)
    user = User.objects.get(pk=client.session["_auth_user_id"])
    url = reverse(REPORT, args=["approvals"])
    # when the report is downloaded in all three formats
    responses = {fmt: client.get(url, _params(export=fmt)) for fmt in ("csv", "xlsx", "pdf")}
    # then three productions are logged, each with its own file hash, one rows hash
    productions = {p.format: p for p in ReportProduction.objects.all()}
    assert set(productions) == {"csv", "xlsx", "pdf"}
    for fmt, response in responses.items():
        assert productions[fmt].sha256 == hashlib.sha256(response.content).hexdigest()
    rows_hash = _rows_hash_from_csv(responses["csv"].content.decode(), 1)
    assert {p.rows_sha256 for p in productions.values()} == {rows_hash}
    # and the XLSX holds the amount as a number, the stamp as text
    sheet = load_workbook(io.BytesIO(responses["xlsx"].content)).worksheets[0]
    values = {row[0].value: row for row in sheet.iter_rows()}
    assert values["SHA-256 of the report's rows"][1].value == rows_hash
    assert values["Produced by"][1].value == user.username
    amount = values["Purchase order"][2]
    assert amount.value == D("1500.00")
    assert amount.data_type == "n"
    # and the PDF's text names the producer and the rows' hash
    pdf = tmp_path / "approvals.pdf"
    pdf.write_bytes(responses["pdf"].content)
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, check=True, text=True
    ).stdout
    assert rows_hash in text
    assert user.username in text
    assert "SHA-256 of the report's rows" in text


def test_screens_list_reports_and_latest_productions(client_for, approved_order):
    # given a download already produced
    client = client_for(Role.FINANCE_ADMIN)
    client.get(reverse(REPORT, args=["approvals"]), _params(export="csv"))
    # when the list and the report page are opened
    index = client.get(reverse(INDEX), _params())
    page = client.get(reverse(REPORT, args=["approvals"]), _params())
    # then the list links every report with the period, and shows the production
    assert index.status_code == 200
    html = index.content.decode()
    for code in ("approvals", "bank_changes", "journal_entries", "master_data", "users"):
        assert reverse(REPORT, args=[code]) in html
    assert f"date_from={_today().isoformat()}" in html
    production = ReportProduction.objects.get()
    assert production.sha256 in html
    # and the report page shows the table, the downloads and the production
    assert page.status_code == 200
    assert page.context["screen_table"]["rows"][0][1] == approved_order.number
    text = page.content.decode()
    for fmt in ("csv", "xlsx", "pdf"):
        assert f"export={fmt}" in text
    assert production.sha256 in text
    # and opening the screen logs nothing more
    assert ReportProduction.objects.count() == 1


@pytest.mark.parametrize(
    "code",
    ["bank_changes", "journal_entries", "master_data", "users", "logins", "sign_offs"],
)
def test_every_report_opens_and_downloads(client_for, code):
    # given the controller
    client = client_for(Role.CONTROLLER)
    url = reverse(REPORT, args=[code])
    # when the page and a CSV download are requested
    page = client.get(url, _params())
    download = client.get(url, _params(export="xlsx"))
    # then both work and the download is logged
    assert page.status_code == 200
    assert download.status_code == 200
    assert ReportProduction.objects.get().code == code


def test_bad_period_and_unknown_report(client_for):
    client = client_for(Role.CONTROLLER)
    # a reversed period: the form says so, nothing is produced
    response = client.get(
        reverse(REPORT, args=["approvals"]),
        {"date_from": "2026-02-01", "date_to": "2026-01-01", "export": "csv"},
    )
    assert response.status_code == 200
    assert response.context["table"] is None
    assert "ends before it starts" in response.content.decode()
    assert not ReportProduction.objects.exists()
    # a date that is not one
    bad = client.get(reverse(REPORT, args=["approvals"]), {"date_from": "x", "date_to": "y"})
    assert bad.status_code == 200
    assert bad.context["form"].errors
    # an unknown report
    assert client.get(reverse(REPORT, args=["nope"]), _params()).status_code == 404


@pytest.mark.parametrize(
    ("role", "status"),
    [
        (Role.FINANCE_ADMIN, 200),
        (Role.CONTROLLER, 200),
        (Role.AUDITOR, 200),
        (Role.AR_CLERK, 403),
        (Role.AP_CLERK, 403),
        (Role.APPROVER, 403),
    ],
)
def test_who_may_run_compliance_reports(client_for, role, status):
    # given a verified session in the role
    client = client_for(role)
    # when the list, a report and a download are requested
    responses = [
        client.get(reverse(INDEX)),
        client.get(reverse(REPORT, args=["users"]), _params()),
        client.get(reverse(REPORT, args=["users"]), _params(export="csv")),
    ]
    # then
    assert [r.status_code for r in responses] == [status] * 3
    assert ReportProduction.objects.count() == (1 if status == 200 else 0)


def test_anonymous_is_sent_to_the_login(client):
    response = client.get(reverse(INDEX))
    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]
