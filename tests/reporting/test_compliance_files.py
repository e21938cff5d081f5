"""The evidence stamp of report files (reporting.report_files.rows_sha256 and the production
stamp of reporting.compliance), and the compliance selectors' query counts."""

from __future__ import annotations

import csv
import hashlib
import io
from datetime import datetime
from decimal import Decimal as D

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.services.tax_rates import tax_rate_set
from core.roles import Role
from core.spreadsheet import neutralise
from payables.enums import ApprovalDecision, DocumentKind
from payables.models import Approval
from payables.services.orders import LineInput, purchase_order_create
from payables.services.vendors import BankDetails, vendor_activate, vendor_create
from reporting.compliance import approvals_table, master_data_table, production_stamp
from reporting.report_files import (
    Amount,
    Cell,
    ReportRow,
    ReportTable,
    csv_bytes,
    rows_csv_bytes,
    rows_sha256,
    xlsx_bytes,
)

text = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=20)
amount = st.builds(
    Amount,
    st.decimals(min_value=-(10**9), max_value=10**9, places=2, allow_nan=False),
    st.sampled_from(["USD", "EUR", "JPY"]),
)
cell: st.SearchStrategy[Cell] = st.one_of(text, amount, st.integers(0, 10**6), st.none())


@st.composite
def tables(draw: st.DrawFn) -> ReportTable:
    width = draw(st.integers(1, 4))
    rows = draw(st.lists(st.lists(cell, min_size=width, max_size=width), max_size=6))
    return ReportTable(
        title=draw(text) or "Report",
        parameters=[("Period", "2026-01-01 to 2026-01-31")],
        headers=[f"Column {n}" for n in range(width)],
        rows=[ReportRow(r) for r in rows],
        notes=draw(st.lists(text, max_size=2)),
    )


class _Producer:
    def get_username(self) -> str:
        return "ada"

    def get_full_name(self) -> str:
        return ""


@settings(max_examples=60, deadline=None)
@given(table=tables())
def test_the_rows_hash_is_recomputable_from_the_csv_download(table: ReportTable) -> None:
    # given a table of any text (quotes, commas, line breaks, formulas) and amounts
    # when it is stamped for production
    stamped, digest = production_stamp(table, actor=_Producer(), produced_at=timezone.now())
    download = csv_bytes(stamped)
    # then the stamp does not change the rows, whose hash is the printed one
    assert digest == rows_sha256(table) == rows_sha256(stamped)
    assert digest == hashlib.sha256(rows_csv_bytes(table)).hexdigest()
    # and the rows are in the download byte for byte, after the blank line
    start = download.index(b"\r\n\r\n") + 4
    assert download[start : start + len(rows_csv_bytes(table))] == rows_csv_bytes(table)
    # and they parse back: amounts in minor units, text never a formula
    parsed = list(csv.reader(io.StringIO(rows_csv_bytes(table).decode(), newline="")))
    assert parsed[0] == list(table.headers)
    for row, back in zip(table.rows, parsed[1:], strict=True):
        for value, read in zip(row.cells, back, strict=True):
            if isinstance(value, Amount):
                assert D(read) == value.rounded()
            elif isinstance(value, str):
                assert read == neutralise(value)
    # and the workbook opens whatever the title holds
    assert xlsx_bytes(stamped)[:2] == b"PK"


def test_the_stamp_names_producer_time_and_hash() -> None:
    # given
    table = ReportTable("T", [("Period", "x")], ["A"], [ReportRow(["1"])])
    # when
    stamped, digest = production_stamp(
        table,
        actor=_Producer(),
        produced_at=datetime(2026, 3, 4, 9, 30, tzinfo=timezone.get_current_timezone()),
    )
    # then
    assert list(stamped.production) == [
        ("Produced at", f"2026-03-04 09:30:00 {timezone.get_current_timezone_name()}"),
        ("Produced by", "ada"),
        ("SHA-256 of the report's rows", hashlib.sha256(b"A\r\n1\r\n").hexdigest()),
    ]
    assert digest in stamped.footer
    assert stamped.rows == table.rows


# ------------------------------------------------------------------------- query counts


def _approved_orders(count: int, make_user) -> None:
    clerk = make_user(Role.AP_CLERK)
    vendor = vendor_create(
        actor=clerk,
        name=f"Vendor {count}",
        email=f"v{count}@vendor.example",
        currency="USD",
        bank=BankDetails(account_holder="V", routing_number="011000015", account_number="1234"),
    )
    vendor_activate(vendor_id=vendor.pk, actor=make_user(Role.CONTROLLER))
    approver = make_user(Role.APPROVER)
    for _ in range(count):
        order = purchase_order_create(
            actor=clerk,
            vendor_id=vendor.pk,
            currency="USD",
            lines=[LineInput(description="x", quantity=D(1), unit_price=D("1500.00"))],
        )
        Approval.objects.create(
            kind=DocumentKind.PURCHASE_ORDER,
            object_id=order.pk,
            decision=ApprovalDecision.APPROVED,
            role="approver",
            user=approver,
            version_hash="0" * 64,
        )


def _queries(build) -> int:
    with CaptureQueriesContext(connection) as queries:
        build()
    return len(queries)


@pytest.mark.django_db
def test_approvals_and_master_data_queries_do_not_grow_with_the_book(make_user) -> None:
    # given one approved order and one tax-rate change
    today = timezone.localdate()
    admin = make_user(Role.FINANCE_ADMIN)
    _approved_orders(1, make_user)
    tax_rate_set(actor=admin, jurisdiction="AT", name="Austria", rate=D("0.2"))
    small = (
        _queries(lambda: approvals_table(today, today)),
        _queries(lambda: master_data_table(today, today)),
    )
    # when there are five more of each
    _approved_orders(5, make_user)
    for n in range(5):
        tax_rate_set(actor=admin, jurisdiction=f"X{n}", name="X", rate=D("0.1"))
        tax_rate_set(actor=admin, jurisdiction=f"X{n}", name="X", rate=D("0.11"))
    large = (
        _queries(lambda: approvals_table(today, today)),
        _queries(lambda: master_data_table(today, today)),
    )
    # then the reports read with the same number of queries
    assert large == small
    assert len(approvals_table(today, today).rows) == 6
