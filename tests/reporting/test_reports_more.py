"""Tax collected, payment success, KPI history and the aging downloads (reporting.admin_reports)."""

from __future__ import annotations

import csv
import io
import json
import subprocess
from datetime import UTC, date, datetime
from decimal import Decimal as D

import pytest
from django.db.models import Sum
from django.urls import reverse
from django.utils import timezone
from djmoney.money import Money
from openpyxl import load_workbook

from billing.models import ProcessorAttempt
from billing.models.processors import AttemptStatus
from billing.services.credit_notes import CreditLineInput, credit_note_issue
from billing.services.customers import customer_create
from billing.services.invoices import LineInput, invoice_create, invoice_void
from billing.services.payment_methods import payment_method_add
from billing.services.payments import payment_record
from core.fx import fx_rate_set
from core.ledger.enums import AccountRole
from core.ledger.models import JournalLine
from core.roles import Role
from reporting.models import KpiSnapshot
from reporting.tax_report import tax_collected

pytestmark = pytest.mark.django_db
TAX = "admin:reporting_tax_collected"
PAYMENTS = "admin:reporting_payment_success"
KPI = "admin:reporting_kpi_history"
MARCH = {"date_from": "2026-03-01", "date_to": "2026-03-31"}


def _pdf_text(content: bytes) -> str:
    return subprocess.run(
        ["pdftotext", "-layout", "-", "-"], input=content, capture_output=True, check=True
    ).stdout.decode()


def _csv_rows(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode())))


def _issue(admin, customer, day: date, *lines: tuple[str, str]):
    return invoice_create(
        actor=admin,
        customer_id=customer.pk,
        issue=True,
        issue_date=day,
        lines=[
            LineInput(description="Item", quantity=D(1), unit_price=D(net), tax_rate=D(rate))
            for net, rate in lines
        ],
    )


@pytest.fixture
def taxes(make_user):
    """March 2026: California (USD) 500.00 at 10% and 200.00 at 5%, a credit note of 100.00
    at 10%, an invoice of 100.00 at 10% voided today; Germany (EUR, 1 EUR = 1.1 USD) 1,000.00
    at 19%; a French reverse-charge customer 800.00 EUR; in April California 300.00 at 10%."""
    admin = make_user(Role.FINANCE_ADMIN)
    fx_rate_set(base="EUR", quote="USD", rate=D("1.1"), rate_date=date(2026, 3, 4))
    calif = customer_create(
        actor=admin, name="Calif", email="c@x.example", currency="USD", tax_jurisdiction="US-CA"
    )
    berlin = customer_create(
        actor=admin,
        name="Berlin GmbH",
        email="b@x.example",
        currency="EUR",
        country="DE",
        tax_jurisdiction="DE",
    )
    paris = customer_create(
        actor=admin,
        name="Paris SA",
        email="p@x.example",
        currency="EUR",
        country="FR",
        reverse_charge=True,
    )
    first = _issue(admin, calif, date(2026, 3, 2), ("500.00", "0.10"), ("200.00", "0.05"))
    credit_note_issue(
        actor=admin,
        invoice_id=first.pk,
        reason="Discount",
        lines=[CreditLineInput(description="Discount", amount=D("100.00"), tax_rate=D("0.10"))],
        issue_date=date(2026, 3, 10),
    )
    wrong = _issue(admin, calif, date(2026, 3, 20), ("100.00", "0.10"))
    invoice_void(actor=admin, invoice_id=wrong.pk, reason="Wrong customer")
    _issue(admin, berlin, date(2026, 3, 5), ("1000.00", "0.19"))
    _issue(admin, paris, date(2026, 3, 6), ("800.00", "0.20"))
    _issue(admin, calif, date(2026, 4, 2), ("300.00", "0.10"))
    return admin


def _tax_payable_movement(date_from: date, date_to: date) -> dict[str, D]:
    rows = (
        JournalLine.objects.filter(
            account__role=AccountRole.TAX_PAYABLE,
            entry__entry_date__gte=date_from,
            entry__entry_date__lte=date_to,
        )
        .values("currency")
        .annotate(credit=Sum("credit"), debit=Sum("debit"))
    )
    return {r["currency"]: r["credit"] - r["debit"] for r in rows}


def test_tax_per_jurisdiction_and_rate_hand_computed(taxes) -> None:
    # given the March documents
    # when the tax collected in March is computed
    report = tax_collected(date_from=date(2026, 3, 1), date_to=date(2026, 3, 31))
    # then each jurisdiction and rate has its net and tax (the void of today is not in March)
    rows = [
        (r.reverse_charge, r.jurisdiction, r.rate, r.currency, r.net, r.tax, r.functional_tax)
        for r in report.rows
    ]
    assert rows == [
        (False, "DE", D("0.19"), "EUR", D("1000.00"), D("190.00"), D("209.00")),
        (False, "US-CA", D("0.05"), "USD", D("200.00"), D("10.00"), D("10.00")),
        # 500.00 - 100.00 credited + 100.00 voided later; 50.00 - 10.00 + 10.00
        (False, "US-CA", D("0.1"), "USD", D("500.00"), D("50.00"), D("50.00")),
        # reverse charge: no tax, the net amount listed
        (True, "FR", D("0"), "EUR", D("800.00"), D("0.00"), D("0.00")),
    ]
    assert report.totals() == {
        "EUR": (D("1000.00"), D("190.00")),
        "USD": (D("700.00"), D("60.00")),
    }
    assert report.functional_total == D("269.00")


@pytest.mark.parametrize("until_today", [False, True])
def test_tax_equals_the_movement_of_the_tax_payable_account(taxes, until_today) -> None:
    # given the book; the period March, or March to today (with the void and April)
    date_from = date(2026, 3, 1)
    date_to = timezone.localdate() if until_today else date(2026, 3, 31)
    # when
    report = tax_collected(date_from=date_from, date_to=date_to)
    # then the tax of each currency is what the tax-payable account moved
    assert {c: tax for c, (_net, tax) in report.totals().items()} == _tax_payable_movement(
        date_from, date_to
    )
    if until_today:
        # -10.00 for the void, +30.00 for April
        assert report.totals()["USD"][1] == D("80.00")


def test_tax_downloads_open(client_for, taxes) -> None:
    # given
    client = client_for(Role.CONTROLLER)
    # when
    csv_file = client.get(reverse(TAX), {**MARCH, "export": "csv"})
    xlsx_file = client.get(reverse(TAX), {**MARCH, "export": "xlsx"})
    pdf_file = client.get(reverse(TAX), {**MARCH, "export": "pdf"})
    # then the CSV has the German row and the reverse-charge row
    rows = _csv_rows(csv_file.content)
    assert ["DE", "19%", "EUR", "1000.00", "190.00", "209.00", "1"] in rows
    assert ["FR", "0%", "EUR", "800.00", "0.00", "0.00", "1"] in rows
    assert ["Total tax in USD", "", "", "", "", "269.00", ""] in rows
    # and the workbook's amounts are numbers
    sheet = load_workbook(io.BytesIO(xlsx_file.content)).worksheets[0]
    de = next(r for r in sheet.iter_rows(values_only=True) if r[0] == "DE")
    assert de[4] == D("190.00") or de[4] == 190
    assert isinstance(de[4], int | float | D)
    # and the PDF shows the functional total
    assert "269.00 USD" in _pdf_text(pdf_file.content)


@pytest.fixture
def attempts(make_user):
    """Stripe card: March 3 succeeded, 1 card_declined, 1 unknown; April 1 succeeded,
    1 expired_card. PayPal ACH in March: 1 succeeded, 2 insufficient_funds. One pending and
    one in February (both left out)."""
    admin = make_user(Role.FINANCE_ADMIN)
    acme = customer_create(actor=admin, name="Acme", email="a@x.example", currency="USD")
    card = payment_method_add(
        actor=admin,
        customer_id=acme.pk,
        type="credit_card",
        processor="stripe",
        processor_token="pm_card_visa",
        processor_customer_id="cus_1",
        card_brand="visa",
        card_last4="4242",
        card_exp_month=12,
        card_exp_year=2030,
    )
    bank = payment_method_add(
        actor=admin,
        customer_id=acme.pk,
        type="ach",
        bank_account_holder="Acme",
        bank_routing_number="110000000",
        bank_account_number="000123456789",
    )
    counter = iter(range(1, 100))

    def attempt(processor, method, status, day: date, code: str = "") -> None:
        n = next(counter)
        payment = None
        if status == AttemptStatus.SUCCEEDED:
            payment = payment_record(
                actor=admin,
                customer_id=acme.pk,
                amount=D("10.00"),
                currency="USD",
                method="credit_card",
                received_date=day,
            )
        ProcessorAttempt.objects.create(
            processor=processor,
            customer=acme,
            payment_method=method,
            currency="USD",
            amount=Money("10.00", "USD"),
            amount_minor=1000,
            status=status,
            payment=payment,
            failure_code=code,
            idempotency_key=f"bo_attempt_rep_{n}",
            created_at=datetime(day.year, day.month, day.day, 12, tzinfo=UTC),
        )

    march, april = date(2026, 3, 10), date(2026, 4, 10)
    for _ in range(3):
        attempt("stripe", card, AttemptStatus.SUCCEEDED, march)
    attempt("stripe", card, AttemptStatus.FAILED, march, "card_declined")
    attempt("stripe", card, AttemptStatus.UNKNOWN, march)
    attempt("stripe", card, AttemptStatus.SUCCEEDED, april)
    attempt("stripe", card, AttemptStatus.FAILED, april, "expired_card")
    attempt("paypal", bank, AttemptStatus.SUCCEEDED, march)
    attempt("paypal", bank, AttemptStatus.FAILED, march, "insufficient_funds")
    attempt("paypal", bank, AttemptStatus.FAILED, march, "insufficient_funds")
    attempt("stripe", card, AttemptStatus.PENDING, march)
    attempt("stripe", card, AttemptStatus.FAILED, date(2026, 2, 15), "expired_card")
    return acme


def test_payment_success_by_processor_method_month_and_decline_code(client_for, attempts) -> None:
    # given the attempts
    client = client_for(Role.AUDITOR)
    # when the report of March and April is downloaded as CSV
    response = client.get(
        reverse(PAYMENTS), {"date_from": "2026-03-01", "date_to": "2026-04-30", "export": "csv"}
    )
    # then: 10 attempted, 5 succeeded, 4 failed, 1 unknown
    rows = _csv_rows(response.content)
    body = rows[rows.index(["", "Attempted", "Succeeded", "Failed", "Unknown", "Success rate"]) :]
    assert body[1:-1] == [
        ["All charges", "10", "5", "4", "1", "50.0%"],
        ["By processor", "", "", "", "", ""],
        ["paypal", "3", "1", "2", "0", "33.3%"],
        ["stripe", "7", "4", "2", "1", "57.1%"],
        ["By payment method", "", "", "", "", ""],
        ["ach", "3", "1", "2", "0", "33.3%"],
        ["credit_card", "7", "4", "2", "1", "57.1%"],
        ["By month", "", "", "", "", ""],
        ["2026-03", "8", "4", "3", "1", "50.0%"],
        ["2026-04", "2", "1", "1", "0", "50.0%"],
        ["Decline codes (share of failed charges)", "", "", "", "", ""],
        ["insufficient_funds", "", "", "2", "", "50.0%"],
        ["card_declined", "", "", "1", "", "25.0%"],
        ["expired_card", "", "", "1", "", "25.0%"],
    ]
    assert body[-1][0].startswith("Charges sent to a payment processor")
    # and the other downloads open
    xlsx = client.get(
        reverse(PAYMENTS), {"date_from": "2026-03-01", "date_to": "2026-04-30", "export": "xlsx"}
    )
    sheet = load_workbook(io.BytesIO(xlsx.content)).worksheets[0]
    assert ("All charges", 10, 5, 4, 1, "50.0%") in list(sheet.iter_rows(values_only=True))
    pdf = client.get(
        reverse(PAYMENTS), {"date_from": "2026-03-01", "date_to": "2026-04-30", "export": "pdf"}
    )
    assert "57.1%" in _pdf_text(pdf.content)


@pytest.fixture
def snapshots(db):
    for day, ar_usd, ar_eur, dso in (
        (date(2026, 3, 1), "1000.00", "200.00", "31.5"),
        (date(2026, 3, 2), "1100.00", "210.00", "32.25"),
        (date(2026, 3, 3), "1250.50", None, "33"),
    ):
        KpiSnapshot.objects.create(date=day, kpi="ar", currency="USD", value=D(ar_usd))
        if ar_eur:
            KpiSnapshot.objects.create(date=day, kpi="ar", currency="EUR", value=D(ar_eur))
        KpiSnapshot.objects.create(date=day, kpi="dso_30", currency="", value=D(dso))
    KpiSnapshot.objects.create(date=date(2026, 4, 1), kpi="ar", currency="USD", value=D("9"))
    KpiSnapshot.objects.create(date=date(2026, 3, 2), kpi="mrr", currency="USD", value=D("5"))


def test_kpi_history_table_chart_and_files(client_for, snapshots) -> None:
    # given daily snapshots of AR (USD, EUR), DSO and MRR
    client = client_for(Role.FINANCE_ADMIN)
    params = {"date_from": "2026-03-01", "date_to": "2026-03-31", "kpis": ["ar", "dso_30"]}
    # when AR and DSO of March are shown
    response = client.get(reverse(KPI), params)
    # then the table lists March's rows of those two KPIs, per KPI and currency by date
    assert response.status_code == 200
    table = response.context["table"]
    assert [[str(c) for c in row.cells] for row in table.rows] == [
        ["2026-03-01", "Accounts receivable", "EUR", "200.00 EUR"],
        ["2026-03-02", "Accounts receivable", "EUR", "210.00 EUR"],
        ["2026-03-01", "Accounts receivable", "USD", "1,000.00 USD"],
        ["2026-03-02", "Accounts receivable", "USD", "1,100.00 USD"],
        ["2026-03-03", "Accounts receivable", "USD", "1,250.50 USD"],
        ["2026-03-01", "DSO (30 days)", "", "31.50"],
        ["2026-03-02", "DSO (30 days)", "", "32.25"],
        ["2026-03-03", "DSO (30 days)", "", "33.00"],
    ]
    # and the chart has one line per KPI and currency over the days, gaps as null
    chart = json.loads(response.context["chart"])
    assert chart["data"]["labels"] == ["2026-03-01", "2026-03-02", "2026-03-03"]
    assert [(d["label"], d["data"]) for d in chart["data"]["datasets"]] == [
        ("Accounts receivable (EUR)", ["200.00", "210.00", None]),
        ("Accounts receivable (USD)", ["1000.00", "1100.00", "1250.50"]),
        ("DSO (30 days)", ["31.5000", "32.2500", "33.0000"]),
    ]
    assert "reporting/dashboard.js" in response.content.decode()
    # and the downloads open, amounts as numbers
    rows = _csv_rows(client.get(reverse(KPI), {**params, "export": "csv"}).content)
    assert ["2026-03-03", "Accounts receivable", "USD", "1250.50"] in rows
    xlsx = client.get(reverse(KPI), {**params, "export": "xlsx"})
    sheet = load_workbook(io.BytesIO(xlsx.content)).worksheets[0]
    values = [r[3] for r in sheet.iter_rows(values_only=True) if r[1] == "Accounts receivable"]
    assert D(str(values[-1])) == D("1250.50")
    pdf = client.get(reverse(KPI), {**params, "export": "pdf"})
    assert "1,250.50 USD" in _pdf_text(pdf.content)


@pytest.fixture
def aging_book(make_user):
    admin = make_user(Role.FINANCE_ADMIN)
    acme = customer_create(actor=admin, name="Acme", email="a@x.example", currency="USD")
    for amount, due in (("1000.00", date(2026, 6, 30)), ("300.00", date(2026, 5, 30))):
        invoice_create(
            actor=admin,
            customer_id=acme.pk,
            issue=True,
            issue_date=date(2026, 2, 1),
            due_date=due,
            lines=[LineInput(description="x", quantity=D(1), unit_price=D(amount), tax_rate=D(0))],
        )
    return acme


def test_ar_aging_downloads_in_xlsx_and_pdf(client_for, aging_book) -> None:
    # given two open invoices: 1,000.00 current and 300.00 31 days late on 2026-06-30
    client = client_for(Role.AR_CLERK)
    url = reverse("admin:reporting_ar_aging_download")
    # when
    xlsx = client.get(url, {"as_of": "2026-06-30", "export": "xlsx"})
    pdf = client.get(url, {"as_of": "2026-06-30", "export": "pdf"})
    csv_file = client.get(url, {"as_of": "2026-06-30", "export": "csv"})
    # then
    sheet = load_workbook(io.BytesIO(xlsx.content)).worksheets[0]
    acme = next(r for r in sheet.iter_rows(values_only=True) if r[0] == "Acme")
    assert [D(str(v)) for v in acme[2:8]] == [D(1000), D(0), D(300), D(0), D(0), D(1300)]
    assert acme[8] == 2
    assert "1,300.00 USD" in _pdf_text(pdf.content)
    assert ["Acme", "USD", "1000.00", "0.00", "300.00", "0.00", "0.00", "1300.00", "2"] in (
        _csv_rows(csv_file.content)
    )
    # and the AP download is refused to an AR clerk
    assert client.get(reverse("admin:reporting_ap_aging_download")).status_code == 403
    assert client.get(url, {"as_of": "someday"}).status_code == 400


@pytest.mark.parametrize(
    ("role", "status"),
    [
        (Role.CONTROLLER, 200),
        (Role.AUDITOR, 200),
        (Role.FINANCE_ADMIN, 200),
        (Role.APPROVER, 403),
        (Role.AR_CLERK, 403),
    ],
)
def test_financial_reports_are_for_financial_roles(client_for, db, role, status) -> None:
    # given
    client = client_for(role)
    # when / then
    for name in (TAX, PAYMENTS, KPI):
        assert client.get(reverse(name)).status_code == status, name


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"date_from": "2026-04-01", "date_to": "2026-03-01"}, "after it ends"),
        ({"date_from": "2000-01-01", "date_to": "2026-03-01"}, "at most 20 years"),
        ({"date_from": "not a date", "date_to": "2026-03-01"}, "Enter a valid date"),
    ],
)
def test_bad_periods_are_explained(client_for, db, params, message) -> None:
    # given
    client = client_for(Role.CONTROLLER)
    # when / then each report answers 400 with the reason, and no file
    for name in (TAX, PAYMENTS, KPI):
        response = client.get(reverse(name), {**params, "kpis": ["ar"], "export": "csv"})
        assert response.status_code == 400, name
        assert message in response.content.decode(), name


def test_an_unknown_kpi_is_explained(client_for, db) -> None:
    # given / when
    response = client_for(Role.CONTROLLER).get(reverse(KPI), {**MARCH, "kpis": ["nope"]})
    # then
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()


def test_the_aging_screen_links_its_excel_and_pdf_downloads(client_for, aging_book) -> None:
    # given / when
    response = client_for(Role.AR_CLERK).get(
        reverse("admin:reporting_ar_aging"), {"as_of": "2026-06-30"}
    )
    # then
    html = response.content.decode()
    url = reverse("admin:reporting_ar_aging_download")
    assert f"{url}?as_of=2026-06-30&amp;export=xlsx" in html
    assert f"{url}?as_of=2026-06-30&amp;export=pdf" in html


def test_tax_screen_shows_the_table_and_its_downloads(client_for, taxes) -> None:
    # given / when
    response = client_for(Role.AUDITOR).get(reverse(TAX), MARCH)
    # then
    html = response.content.decode()
    assert response.status_code == 200
    assert "269.00 USD" in html
    assert "Reverse charge (no tax charged)" in html
    assert f"{reverse(TAX)}?date_from=2026-03-01&amp;date_to=2026-03-31&amp;export=xlsx" in html
