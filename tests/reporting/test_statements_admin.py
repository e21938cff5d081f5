"""The statement screens of the workspace (reporting.admin_statements) and their downloads
(reporting.report_files), over the book of tests.reporting.test_statements."""

from __future__ import annotations

import csv
import io
import subprocess
from collections.abc import Callable
from datetime import date
from decimal import Decimal as D
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone
from openpyxl import load_workbook

from core.roles import Role
from reporting.report_files import Amount, ReportRow, ReportTable, csv_bytes, xlsx_bytes
from tests.reporting.test_statements import Book, build_book

pytestmark = pytest.mark.django_db

TB = "admin:reporting_trial_balance"
PNL = "admin:reporting_profit_and_loss"
SHEET = "admin:reporting_balance_sheet"
FLOW = "admin:reporting_cash_flow_statement"
H1 = {"date_from": "2026-01-01", "date_to": "2026-06-30"}


@pytest.fixture
def book(make_user: Callable[..., Any]) -> Book:
    return build_book(make_user)


def _rows(response) -> dict[str, list[str]]:
    """Screen rows by their account code, or by their label when they have none."""
    rows = {}
    for row in response.context["screen_table"]["rows"]:
        text = [str(cell).replace("<strong>", "").replace("</strong>", "") for cell in row]
        rows[text[0] or text[1]] = text
    return rows


def _csv(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.content.decode())))


def test_profit_and_loss_screen_formats_amounts_for_people(client_for, book) -> None:
    # given the book
    client = client_for(Role.CONTROLLER)
    # when the controller opens the P&L of 2026 H1
    response = client.get(reverse(PNL), H1)
    # then the columns are the currencies then the functional total, amounts with separators
    assert response.status_code == 200
    assert response.context["screen_table"]["headers"] == [
        "Code",
        "Account",
        "EUR",
        "USD",
        "Total (USD)",
    ]
    rows = _rows(response)
    assert "2,000.00 USD" in rows["4000"][3]
    assert "2,110.00 USD" in rows["4000"][4]
    assert "1,500.00 USD" in rows["Net income"][4]
    html = response.content.decode()
    for fmt in ("csv", "xlsx", "pdf"):
        assert f"export={fmt}" in html


def test_profit_and_loss_with_comparison_columns(client_for, book) -> None:
    # given the book
    client = client_for(Role.AUDITOR)
    # when 2026 H1 is compared with 2025
    response = client.get(
        reverse(PNL), {**H1, "compare_from": "2025-01-01", "compare_to": "2025-12-31"}
    )
    # then a second set of columns holds 2025
    headers = response.context["screen_table"]["headers"]
    assert headers[-1] == "Total (USD) (comparison)"
    assert "700.00 USD" in _rows(response)["Net income"][-1]


def test_balance_sheet_screen_balances(client_for, book) -> None:
    # given the book
    client = client_for(Role.FINANCE_ADMIN)
    # when
    response = client.get(reverse(SHEET), {"as_of": "2026-06-30"})
    # then
    rows = _rows(response)
    assert "2,820.00 USD" in rows["Total assets"][-1]
    assert "2,820.00 USD" in rows["Total liabilities and equity"][-1]
    assert "1,500.00 USD" in rows["Current-year result"][-1]
    assert "700.00 USD" in rows["Retained earnings"][-1]
    assert ("Balanced", "yes") in response.context["table"].parameters


def test_cash_flow_and_trial_balance_screens(client_for, book) -> None:
    # given the book
    client = client_for(Role.CONTROLLER)
    # when
    flow = client.get(reverse(FLOW), H1)
    tb = client.get(reverse(TB), {"as_of": "2026-06-30"})
    # then
    flow_rows = _rows(flow)
    assert flow.context["screen_table"]["headers"] == ["", "EUR", "USD"]
    assert "2,200.00 USD" in flow_rows["Receipts from customers"][2]
    assert "-500.00 USD" in flow_rows["Payments to vendors and for expenses"][2]
    assert "1,700.00 USD" in flow_rows["Closing cash"][2]
    # and the trial balance totals (USD debits: 300 + 1,000 + 2,200 + 2,200 + 500 + 500 + 120;
    # functional adds the EUR invoice at 110 and the EUR receipt at 120)
    tb_rows = _rows(tb)
    assert "6,820.00 USD" in tb_rows["Total USD"][3]
    assert "6,820.00 USD" in tb_rows["Total USD"][4]
    assert "200.00 EUR" in tb_rows["Total EUR"][3]
    assert "7,050.00 USD" in tb_rows["Total in USD"][6]
    assert "7,050.00 USD" in tb_rows["Total in USD"][7]


def test_opening_a_page_shows_the_year_to_date(client_for, book) -> None:
    # given
    client = client_for(Role.CONTROLLER)
    # when the P&L is opened without dates
    response = client.get(reverse(PNL))
    # then it shows the fiscal year to today
    assert response.status_code == 200
    today = timezone.localdate()
    assert response.context["table"].parameters[0] == (
        "Period",
        f"{date(today.year, 1, 1).isoformat()} to {today.isoformat()}",
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"date_from": "2026-02-01", "date_to": "2026-01-01"}, "starts"),
        ({"date_from": "2000-01-01", "date_to": "2026-01-01"}, "20 years"),
        ({"date_from": "2026-01-01"}, "required"),
        ({**H1, "compare_from": "2025-01-01"}, "both"),
    ],
)
def test_a_bad_period_is_shown_on_the_form_and_nothing_downloads(
    client_for, params, message
) -> None:
    # given
    client = client_for(Role.CONTROLLER)
    # when
    response = client.get(reverse(PNL), {**params, "export": "csv"})
    # then the page explains, no file is sent
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert response.context["table"] is None
    assert message in response.content.decode()


def test_csv_download_parses(client_for, book) -> None:
    # given the book
    client = client_for(Role.CONTROLLER)
    # when the P&L is downloaded as CSV
    response = client.get(reverse(PNL), {**H1, "export": "csv"})
    # then the title and period head it, the amounts are plain minor units
    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="profit-and-loss-2026-01-01-2026-06-30.csv"' in response["Content-Disposition"]
    rows = _csv(response)
    assert rows[0] == ["Profit and loss"]
    assert rows[1] == ["Period", "2026-01-01 to 2026-06-30"]
    header = rows.index(["Code", "Account", "EUR", "USD", "Total (USD)"])
    body = {row[0] or row[1]: row for row in rows[header + 1 :] if len(row) > 2}
    assert body["4000"] == ["4000", "Revenue", "100.00", "2000.00", "2110.00"]
    assert body["4900"] == ["4900", "Realized FX gain/loss", "", "", "10.00"]
    assert body["Net income"][2:] == ["100.00", "1380.00", "1500.00"]


def test_xlsx_download_has_numeric_amount_cells(client_for, book) -> None:
    # given the book
    client = client_for(Role.CONTROLLER)
    # when the balance sheet is downloaded as XLSX
    response = client.get(reverse(SHEET), {"as_of": "2026-06-30", "export": "xlsx"})
    # then it opens, amounts are numbers with their currency's format
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    sheet = load_workbook(io.BytesIO(response.content)).active
    rows = {row[1].value: row for row in sheet.iter_rows() if len(row) > 1 and row[1].value}
    total = rows["Total liabilities and equity"]
    assert total[-1].value == 2820
    assert isinstance(total[-1].value, int | float)
    assert total[-1].number_format == '#,##0.00 "USD";-#,##0.00 "USD"'
    assert rows["Current-year result"][-1].value == 1500
    assert sheet["A1"].value == "Balance sheet"


def test_pdf_download_holds_the_net_income(client_for, book, tmp_path) -> None:
    # given the book
    client = client_for(Role.CONTROLLER)
    # when the P&L is downloaded as PDF
    response = client.get(reverse(PNL), {**H1, "export": "pdf"})
    # then it is a PDF whose text has the net income as people read it
    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    pdf = tmp_path / "pnl.pdf"
    pdf.write_bytes(response.content)
    text = subprocess.run(
        ["/usr/bin/pdftotext", "-layout", str(pdf), "-"],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    assert "Profit and loss" in text
    assert "Net income" in text
    assert "1,500.00 USD" in text


@pytest.mark.parametrize("name", [TB, PNL, SHEET, FLOW])
@pytest.mark.parametrize(
    ("role", "status"),
    [
        (Role.CONTROLLER, 200),
        (Role.AUDITOR, 200),
        (Role.FINANCE_ADMIN, 200),
        (Role.AR_CLERK, 403),
        (Role.AP_CLERK, 403),
        (Role.APPROVER, 403),
    ],
)
def test_pages_need_the_financial_reports_permission(client_for, name, role, status) -> None:
    # given a person in the role
    client = client_for(role)
    # when the page and a download are asked for
    page = client.get(reverse(name))
    download = client.get(reverse(name), {"export": "csv"})
    # then
    assert page.status_code == status
    assert download.status_code == status


def test_anonymous_is_sent_to_the_login(client) -> None:
    # when
    response = client.get(reverse(PNL))
    # then
    assert response.status_code == 302
    assert "login" in response["Location"]


# ------------------------------------------------------------------------------ report files


def test_report_files_neutralise_formulas_and_keep_text_as_text() -> None:
    # given a table whose text cells start like formulas
    table = ReportTable(
        title="=cmd",
        parameters=[("+x", "-y")],
        headers=["@name", "Amount"],
        rows=[
            ReportRow(["=HYPERLINK(1)", Amount(D("-12.5"), "USD")]),
            ReportRow(["\tx", Amount(D("1999"), "JPY")]),
            ReportRow(["plain", Amount(D("1.2345"), "KWD")]),
        ],
    )
    # when it is written as CSV and XLSX
    rows = list(csv.reader(io.StringIO(csv_bytes(table).decode())))
    sheet = load_workbook(io.BytesIO(xlsx_bytes(table))).active
    # then no CSV cell starts a formula, and a negative amount stays a number
    assert rows[0] == ["'=cmd"]
    assert rows[1] == ["'+x", "'-y"]
    assert rows[3] == ["'@name", "Amount"]
    assert rows[4] == ["'=HYPERLINK(1)", "-12.50"]
    assert rows[5] == ["'\tx", "1999"]
    assert rows[6] == ["plain", "1.235"]
    # and the XLSX holds the text as text (no formula) and the amounts as numbers
    cells = {row[0].value: row for row in sheet.iter_rows(min_row=5) if row[0].value}
    label, amount = cells["=HYPERLINK(1)"]
    assert label.data_type == "s"
    assert amount.value == -12.5
    assert cells["\tx"][1].number_format == '#,##0 "JPY";-#,##0 "JPY"'
    assert cells["plain"][1].number_format == '#,##0.000 "KWD";-#,##0.000 "KWD"'
    assert sheet["A1"].data_type == "s"
