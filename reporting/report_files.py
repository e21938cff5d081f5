"""One report table, three downloads: CSV, XLSX and PDF.

A report builds a ``ReportTable`` (title, the parameters it was run with, column headers and
rows of text, dates and amounts) once; the screen and every download are drawn from it, so
they always show the same figures. Amounts are ``Amount`` cells that carry their currency:

- CSV: the amount rounded to the currency's minor units, no separators ("1631.25"); every
  text cell that a spreadsheet would run as a formula is neutralised with a leading
  apostrophe (``core.admin_export.neutralise``, OWASP "CSV injection").
- XLSX: real numeric cells with a number format of the currency's decimals and its code
  (``#,##0.00 "USD"``); text cells are written as text, never as formulas.
- PDF: a plain A4/Letter table (WeasyPrint, offline: no URL is fetched), amounts as people
  read them ("1,631.25 USD").

Later reports (KPI history, compliance) reuse this module: build a table, call
``report_response(table, "csv" | "xlsx" | "pdf")``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, Literal

from django.conf import settings
from django.http import HttpResponse
from django.template.loader import render_to_string
from django.utils import timezone

from core.admin_confirm import amount_text
from core.company import company_details
from core.exceptions import DomainError
from core.money import minor_unit_exponent, round_money
from core.spreadsheet import neutralise

FORMATS = ("csv", "xlsx", "pdf")
Format = Literal["csv", "xlsx", "pdf"]
PDF_TEMPLATE = "reporting/report_table_pdf.html"
CONTENT_TYPES: dict[str, str] = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
}


@dataclass(frozen=True, slots=True)
class Amount:
    """A numeric cell in its currency."""

    amount: Decimal
    currency: str

    def places(self) -> int:
        try:
            return minor_unit_exponent(self.currency)
        except DomainError:
            return 2

    def rounded(self) -> Decimal:
        try:
            return round_money(self.amount, self.currency)
        except DomainError:
            return self.amount

    def __str__(self) -> str:
        return amount_text(self.amount, self.currency)


Cell = str | date | Amount | int | None
RowStyle = Literal["", "heading", "total"]


@dataclass(frozen=True, slots=True)
class ReportRow:
    cells: Sequence[Cell]
    # "heading": a section title row; "total": a subtotal or total, shown in bold.
    style: RowStyle = ""


@dataclass(frozen=True)
class ReportTable:
    title: str
    # What the report was run with, in order: ("Period", "2026-01-01 to 2026-06-30").
    parameters: Sequence[tuple[str, str]]
    headers: Sequence[str]
    rows: Sequence[ReportRow]
    notes: Sequence[str] = field(default=())
    # The download's file name without extension; from the title when empty.
    filename: str = ""
    # Who produced this copy, when, and the SHA-256 of its rows (``rows_sha256``): printed
    # below the parameters in every format; empty for reports that are not evidence.
    production: Sequence[tuple[str, str]] = field(default=())
    # A line at the foot of every PDF page (the rows' SHA-256 of an evidence report).
    footer: str = ""

    def file_stem(self) -> str:
        return self.filename or re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-")


def cell_text(cell: Cell) -> str:
    """A cell as people read it: amounts with separators and currency, ISO dates."""
    if cell is None:
        return ""
    if isinstance(cell, date):
        return cell.isoformat()
    return str(cell)


# ------------------------------------------------------------------------------------- CSV


def _csv_cell(cell: Cell) -> str:
    if isinstance(cell, Amount):
        return f"{cell.rounded():f}"
    return neutralise(cell_text(cell))


def _csv_rows(writer: Any, table: ReportTable) -> None:
    writer.writerow([neutralise(h) for h in table.headers])
    for row in table.rows:
        writer.writerow([_csv_cell(cell) for cell in row.cells])


def rows_csv_bytes(table: ReportTable) -> bytes:
    """The header and the rows alone, as in the CSV download (UTF-8, CRLF line ends): the
    canonical content of a report, whatever format it is served in."""
    out = io.StringIO()
    _csv_rows(csv.writer(out), table)
    return out.getvalue().encode("utf-8")


def rows_sha256(table: ReportTable) -> str:
    """SHA-256 (hex) of ``rows_csv_bytes``: a PDF cannot carry the hash of itself, so an
    evidence report prints the hash of its rows, which anyone can recompute from the CSV."""
    return hashlib.sha256(rows_csv_bytes(table)).hexdigest()


def csv_bytes(table: ReportTable) -> bytes:
    """The title, parameters and production stamp, a blank line, then the header and the
    rows (byte for byte ``rows_csv_bytes``), then the notes."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([neutralise(table.title)])
    for name, value in [*table.parameters, *table.production]:
        writer.writerow([neutralise(name), neutralise(value)])
    writer.writerow([])
    _csv_rows(writer, table)
    for note in table.notes:
        writer.writerow([neutralise(note)])
    return out.getvalue().encode("utf-8")


# ------------------------------------------------------------------------------------ XLSX


def number_format(amount: Amount) -> str:
    """``#,##0.00 "USD"``: the currency's decimals, thousands separators, its code."""
    places = amount.places()
    digits = "#,##0" + ("." + "0" * places if places else "")
    return f'{digits} "{amount.currency}";-{digits} "{amount.currency}"'


def xlsx_bytes(table: ReportTable) -> bytes:
    from openpyxl import Workbook  # type: ignore[import-untyped]
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE  # type: ignore[import-untyped]
    from openpyxl.styles import Font  # type: ignore[import-untyped]
    from openpyxl.utils import get_column_letter  # type: ignore[import-untyped]

    workbook = Workbook()
    sheet = workbook.worksheets[0]
    # Excel refuses these characters in a sheet's name, and more than 31 of any.
    title = ILLEGAL_CHARACTERS_RE.sub("", re.sub(r"[\\/?*:\[\]]", " ", table.title))
    sheet.title = title[:31].strip() or "Report"
    bold = Font(bold=True)

    def put(row: int, column: int, cell: Cell, *, strong: bool = False) -> None:
        target = sheet.cell(row=row, column=column)
        if isinstance(cell, Amount):
            target.value = cell.rounded()
            target.number_format = number_format(cell)
        elif isinstance(cell, date):
            target.value = cell
            target.number_format = "yyyy-mm-dd"
        elif isinstance(cell, int):
            target.value = cell
        else:
            # Control characters (a pasted comment) are not allowed in a worksheet: dropped.
            target.value = ILLEGAL_CHARACTERS_RE.sub("", cell or "")
            # Text stays text: openpyxl would store "=..." as a formula.
            target.data_type = "s"
        if strong:
            target.font = bold

    put(1, 1, table.title, strong=True)
    line = 2
    for name, value in [*table.parameters, *table.production]:
        put(line, 1, name)
        put(line, 2, value)
        line += 1
    line += 1
    header_row = line
    for column, header in enumerate(table.headers, start=1):
        put(line, column, header, strong=True)
    for row in table.rows:
        line += 1
        for column, cell in enumerate(row.cells, start=1):
            put(line, column, cell, strong=row.style in ("heading", "total"))
    for note in table.notes:
        line += 2
        put(line, 1, note)
    sheet.freeze_panes = sheet.cell(row=header_row + 1, column=1)
    for column in range(1, len(table.headers) + 1):
        width = max(
            [len(table.headers[column - 1])]
            + [len(cell_text(r.cells[column - 1])) for r in table.rows if len(r.cells) >= column]
        )
        sheet.column_dimensions[get_column_letter(column)].width = min(max(width + 2, 10), 60)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


# ------------------------------------------------------------------------------------- PDF


def pdf_bytes(table: ReportTable) -> bytes:
    """The table on paper; offline (only ``data:`` URLs would be fetched, and none are)."""
    from weasyprint import HTML
    from weasyprint.urls import URLFetcher

    company = company_details()
    numeric = [
        any(isinstance(r.cells[i], Amount) for r in table.rows if len(r.cells) > i)
        for i in range(len(table.headers))
    ]
    html = render_to_string(
        PDF_TEMPLATE,
        {
            "table": table,
            "company": company,
            # Many amount columns (a comparison in several currencies): the page turns.
            "wide": len(table.headers) > 7,
            "headers": [
                {"text": h, "numeric": n} for h, n in zip(table.headers, numeric, strict=True)
            ],
            "rows": [
                {
                    "style": row.style,
                    "cells": [
                        {"text": cell_text(cell), "numeric": isinstance(cell, Amount | int)}
                        for cell in row.cells
                    ],
                }
                for row in table.rows
            ],
            "generated_at": timezone.localtime(timezone.now()).strftime("%Y-%m-%d %H:%M"),
            # Inside a CSS string: no quote, backslash or markup can end it.
            "footer_css": re.sub(r'["\\<>\n\r]', "", table.footer),
        },
    )
    document = HTML(
        string=html,
        base_url=str(settings.BASE_DIR),
        url_fetcher=URLFetcher(allowed_protocols=("data",)),
    )
    pdf: bytes = document.write_pdf()
    return pdf


# -------------------------------------------------------------------------------- response


def report_bytes(table: ReportTable, file_format: Format) -> bytes:
    if file_format == "csv":
        return csv_bytes(table)
    if file_format == "xlsx":
        return xlsx_bytes(table)
    return pdf_bytes(table)


def report_response(table: ReportTable, file_format: Format) -> HttpResponse:
    """The table as a download in ``file_format``."""
    response = HttpResponse(
        report_bytes(table, file_format), content_type=CONTENT_TYPES[file_format]
    )
    response["Content-Disposition"] = f'attachment; filename="{table.file_stem()}.{file_format}"'
    return response
