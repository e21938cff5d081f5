"""Every CSV the product writes keeps text as text (issue 15 hole 7, OWASP "CSV injection"):
the reconciliation exceptions report, the API's CSV exports and the reports share one rule."""

from __future__ import annotations

import csv
import io

import pytest

from core.api.renderers import CSVRenderer
from core.spreadsheet import neutralise
from reconciliation.services_exceptions import exception_raise, exceptions_report_csv

FORMULAS = [
    '=HYPERLINK("http://evil.example","Click")',
    "+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1+1)",
    "\t=1",
    "\uff1d1+1",  # a full-width equals sign
]


@pytest.mark.parametrize("text", FORMULAS)
def test_a_formula_becomes_text(text: str) -> None:
    assert neutralise(text) == "'" + text


@pytest.mark.parametrize("text", ["-12.50", "+3", "1e5", "Acme", "", "a=b"])
def test_numbers_and_plain_text_are_left_alone(text: str) -> None:
    assert neutralise(text) == text


def rows_of(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"))))


@pytest.mark.django_db
def test_the_exceptions_report_csv_neutralises_every_text_cell() -> None:
    for n, text in enumerate(FORMULAS):
        exception_raise(kind="unmatched_line", key=f"formula:{n}", message=text)
    rows = rows_of(exceptions_report_csv({}))
    header, body = rows[0], rows[1:]
    messages = {row[header.index("message")] for row in body}
    assert messages == {"'" + text for text in FORMULAS}


def test_the_api_csv_export_neutralises_text_and_keeps_numbers() -> None:
    data = CSVRenderer().render(
        {"columns": ["name", "amount"], "rows": [["=HYPERLINK(1)", "-12.50"], ["Acme", 3]]}
    )
    assert rows_of(data) == [["name", "amount"], ["'=HYPERLINK(1)", "-12.50"], ["Acme", "3"]]
