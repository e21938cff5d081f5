"""The finance dashboard's panels, the whole page, the statements and the KPI snapshot over
a million invoices, beside the naive way (Python loops over the ORM) in the same run.

    .venv/bin/python bench/dashboard.py [--quick] [--runs N] [--invoices N] [--lines N]
        [--statement-lines N] [--naive-rows N]

Uses its own PostgreSQL database ``bo_bench_dashboard`` beside the one DATABASE_URL names
(made once, migrated, seeded by SQL with user triggers off, VACUUM ANALYZE, and kept: a later
run with the same sizes reuses it; other sizes drop and reseed it). Default sizes (issue 13):
1,000,000 invoices, 5,000,000 ledger lines (2,500,000 two-line entries over eight account
pairs: sales, receipts, bills, vendor payments, expenses, fees, bank transfers), 200,000
bank statement lines; also 10,000 customers with a payment method each, a payment with
its allocation for every paid invoice (received 15 days early to 25 days late, so the
customers' payment timing and past days' receivables have a real history) and processor
attempts (one per five invoices, the last 120 days, with their payments). ``--quick`` is
1/20th of that.

Measured, the clock only around the call, median of ``--runs`` after one warm-up, each with
its query count (one more run under CaptureQueriesContext): the hourly payment-timing
refresh (today's projection reads what it stores), every panel function of
``reporting.dashboard`` as of today (the page's default), ``dashboard_figures`` for a
finance admin, the dashboard page ``/admin/`` and its panels fragment through Django's
test client as a finance admin who passed the second factor, ``profit_and_loss`` for the
year 2025 and ``balance_sheet`` at its end, and ``kpi_snapshot_take`` for today (the day's
rows deleted before each run, outside the clock).

Naive rows (Python loops over ORM objects: AR aging, cash, P&L, balance sheet) read at most
``--naive-rows`` rows each (100,000) and are scaled to the whole set by rows: the output
says so. Goals (issue 13): every panel < 200 ms, the page < 1 s, P&L and balance sheet for
a year < 500 ms, the KPI snapshot < 60 s.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.admin_changelist import insert_select  # noqa: E402
from bench.ledger_post import DEFAULT_URL  # noqa: E402

DB_NAME = "bo_bench_dashboard"
CUSTOMERS = 10_000
PANEL_MS = 200
PAGE_MS = 1000
STATEMENT_MS = 500
SNAPSHOT_MS = 60_000
# The seeded data ends on this day (invoices, entries, statements).
ANCHOR = date(2026, 11, 30)
YEAR = (date(2025, 1, 1), date(2025, 12, 31))
STATEMENT_SIZE = 1_000


@dataclass(slots=True)
class Row:
    label: str
    median_ms: float
    queries: int | None
    goal_ms: float | None
    naive_ms: float | None = None
    note: str = ""


# --- Database ---------------------------------------------------------------------------------


def database_urls(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql", "pgsql", "psql"):
        sys.exit(f"bench/dashboard.py needs PostgreSQL; DATABASE_URL is {url!r}.")
    return (
        urlunsplit(parts._replace(path=f"/{DB_NAME}")),
        urlunsplit(parts._replace(path="/postgres")),
    )


def ensure_database(url: str, maintenance_url: str, sizes: tuple[int, int, int]) -> bool:
    """Create the database if absent; drop and recreate it when it holds other sizes.
    Returns True when it already holds these sizes (reuse)."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(maintenance_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME]).fetchone()
    if exists:
        # ``_v3``: the seed with a payment per paid invoice and every customer with its own
        # payment timing; an older seed is made again.
        with psycopg.connect(url, autocommit=True) as conn:
            have = conn.execute(
                "SELECT to_regclass('bench_dashboard_size_v3') IS NOT NULL"
            ).fetchone()
            row = None
            if have and have[0]:
                row = conn.execute(
                    "SELECT invoices, lines, statement_lines FROM bench_dashboard_size_v3"
                ).fetchone()
        if row is not None and tuple(row) == sizes:
            return True
        print(f"{DB_NAME} holds other sizes ({row}): dropping it", flush=True)
    with psycopg.connect(maintenance_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(DB_NAME)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DB_NAME)))
    return False


def _next_id(model: Any) -> int:
    return int(model.objects.order_by("-pk").values_list("pk", flat=True).first() or 0)


def seed(invoices: int, lines: int, statement_lines: int) -> None:
    """Customers, payment methods, invoices, journal entries, bank accounts, statements and
    their lines, processor attempts and payments, written by SQL."""
    from django.db import connection, transaction

    from billing.models import (
        Customer,
        Invoice,
        Payment,
        PaymentAllocation,
        PaymentMethod,
        ProcessorAttempt,
    )
    from core.ledger.day_totals import day_totals_rebuild
    from core.ledger.enums import AccountRole
    from core.ledger.models import Account, JournalEntry, JournalLine
    from reconciliation.models import BankAccount, Statement, StatementLine

    role = {a.role: a.pk for a in Account.objects.exclude(role="")}
    cash, ar, ap = (
        role[AccountRole.CASH],
        role[AccountRole.ACCOUNTS_RECEIVABLE],
        role[AccountRole.ACCOUNTS_PAYABLE],
    )
    revenue, expenses = role[AccountRole.REVENUE], role[AccountRole.EXPENSES]
    fees, clearing = role[AccountRole.BANK_FEES], role[AccountRole.PROCESSOR_CLEARING]
    customers = min(CUSTOMERS, max(100, invoices // 10))
    currency = "CASE g % 3 WHEN 0 THEN 'USD' WHEN 1 THEN 'EUR' ELSE 'JPY' END"
    anchor = f"date '{ANCHOR.isoformat()}'"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        c0 = _next_id(Customer)
        insert_select(
            Customer,
            customers,
            {
                "id": f"{c0} + g",
                "name": "'Customer ' || lpad(g::text, 5, '0') || ' Ltd'",
                "email": "'ap' || g || '@customer.example'",
                "currency": currency,
                "created_at": "now() - make_interval(days => 800 + g % 100)",
            },
        )
        insert_select(
            PaymentMethod,
            customers,
            {
                "customer_id": f"{c0} + g",
                "type": "CASE WHEN g % 4 = 0 THEN 'wire_transfer' ELSE 'ach' END",
                "processor": "CASE WHEN g % 2 = 0 THEN 'stripe' ELSE 'adyen' END",
                "is_default": "true",
            },
        )
        pm0 = PaymentMethod.objects.order_by("pk").values_list("pk", flat=True).first() or 1
        # Invoice g: one in ten a draft, three open (one of them half paid), six paid; issued
        # over the 700 days ending on the anchor, due 30 days later.
        # Invoice g's customer: g / 10 (ten in a row each), so that every customer has open,
        # half-paid and paid invoices (its own payment timing, as in a real book).
        customer_of = f"((g / 10) % {customers})"
        cust = f"({c0} + 1 + {customer_of})"
        cust_currency = currency.replace("g % 3", f"({customer_of} + 1) % 3")
        total = "((10000 + (g * 37) % 990000) / 100.0)::numeric(19, 4)"
        draft = "g % 10 = 0"
        day = f"{anchor} - (g % 700)"
        paid = (
            f"CASE WHEN g % 10 >= 4 THEN {total} "
            f"WHEN g % 10 = 3 THEN round({total} / 2, 2) ELSE 0 END"
        )
        # Paid (in full or half) on due date + -15..25 days, never after the anchor.
        received = f"least({anchor}, {day} + 30 + (g * 7) % 41 - 15)"
        i0 = _next_id(Invoice)
        insert_select(
            Invoice,
            invoices,
            {
                "id": f"{i0} + g",
                "customer_id": cust,
                "number": f"CASE WHEN {draft} THEN NULL ELSE 'INV-' || lpad(g::text, 8, '0') END",
                "status": (
                    "CASE WHEN g % 10 = 0 THEN 'draft' WHEN g % 10 < 4 THEN 'open' ELSE 'paid' END"
                ),
                "currency": cust_currency,
                "subtotal": total,
                "total": total,
                "amount_paid": paid,
                "issue_date": f"CASE WHEN {draft} THEN NULL ELSE {day} END",
                "due_date": f"CASE WHEN {draft} THEN NULL ELSE {day} + 30 END",
                "fx_rate": "1",
                "created_at": f"({day})::timestamptz",
                "issued_at": f"CASE WHEN {draft} THEN NULL ELSE ({day})::timestamptz END",
                "closed_at": f"CASE WHEN g % 10 >= 4 THEN ({received})::timestamptz END",
            },
        )
        # One payment per paid invoice with its allocation, so that the payment history
        # (days late, the projection's timing, past days' receivables) is a real one.
        # Paid invoice k is invoice g = (k - 1) / 7 * 10 + 3 + (k - 1) % 7 (g % 10 in 3..9).
        paid_count = (invoices // 10) * 7 + max(0, invoices % 10 - 2)
        g_of_k = "((g - 1) / 7 * 10 + 3 + (g - 1) % 7)"

        def of_k(expression: str) -> str:
            return re.sub(r"\bg\b", g_of_k, expression)

        r0 = _next_id(Payment)
        insert_select(
            Payment,
            paid_count,
            {
                "id": f"{r0} + g",
                "customer_id": of_k(cust),
                "currency": of_k(cust_currency),
                "amount": of_k(paid),
                "amount_allocated": of_k(paid),
                "method": "CASE WHEN g % 3 = 0 THEN 'wire_transfer' ELSE 'ach' END",
                "status": "'succeeded'",
                "received_date": of_k(received),
                "created_at": f"({of_k(received)})::timestamptz",
            },
        )
        insert_select(
            PaymentAllocation,
            paid_count,
            {
                "payment_id": f"{r0} + g",
                "invoice_id": f"{i0} + {g_of_k}",
                "currency": of_k(cust_currency),
                "amount": of_k(paid),
                "created_at": f"({of_k(received)})::timestamptz",
            },
        )
        # Entries: two lines each, eight kinds by g % 8 (debit account, credit account).
        pairs = [
            (ar, revenue),  # sale
            (ar, revenue),
            (cash, ar),  # receipt
            (expenses, ap),  # bill
            (ap, cash),  # vendor payment
            (expenses, cash),  # card expense
            (fees, clearing),  # processor fee
            (cash, clearing),  # payout
        ]
        entries = lines // 2
        e0 = _next_id(JournalEntry)
        insert_select(
            JournalEntry,
            entries,
            {
                "id": f"{e0} + g",
                "entry_date": f"{anchor} - (g % 700)",
                "description": "'Bench entry ' || g",
                "source": "CASE WHEN g % 8 < 2 THEN 'billing.invoice:' || g ELSE 'manual' END",
                "idempotency_key": "'bench:' || g",
                "functional_currency": "'USD'",
                "created_at": f"({anchor} - (g % 700))::timestamptz",
            },
        )
        amount = "((10000 + (g * 37) % 990000) / 100.0)::numeric(19, 4)"
        for side in ("debit", "credit"):
            other = "credit" if side == "debit" else "debit"
            index = 0 if side == "debit" else 1
            account = (
                "CASE g % 8 "
                + " ".join(f"WHEN {i} THEN {pair[index]}" for i, pair in enumerate(pairs))
                + " END"
            )
            insert_select(
                JournalLine,
                entries,
                {
                    "entry_id": f"{e0} + g",
                    "account_id": account,
                    "currency": currency,
                    side: amount,
                    f"functional_{side}": amount,
                    other: "0",
                    f"functional_{other}": "0",
                },
            )
        # Two bank accounts on the cash account; statements of 1,000 lines, one a fortnight.
        banks = []
        for name, cur in (("Operating USD", "USD"), ("Operating EUR", "EUR")):
            banks.append(
                BankAccount.objects.create(name=name, currency=cur, ledger_account_id=cash).pk
            )
        statements = max(1, -(-statement_lines // STATEMENT_SIZE))
        s0 = _next_id(Statement)
        bank = f"CASE WHEN g % 2 = 0 THEN {banks[0]} ELSE {banks[1]} END"
        insert_select(
            Statement,
            statements,
            {
                "id": f"{s0} + g",
                "bank_account_id": bank,
                "format": "'camt053'",
                "statement_id": "'ST-' || g",
                "currency": "CASE WHEN g % 2 = 0 THEN 'USD' ELSE 'EUR' END",
                "opening_balance": "(1000000 + g)::numeric(19, 4)",
                "closing_balance": "(1000000 + g + 1)::numeric(19, 4)",
                "opening_date": f"{anchor} - ({statements} - g) * 7 - 6",
                "closing_date": f"{anchor} - ({statements} - g) * 7",
                "control": "'balanced'",
                "file_sha256": "md5(g::text) || md5(g::text)",
                "fingerprint": "md5('s' || g) || md5('s' || g)",
                "line_count": str(STATEMENT_SIZE),
            },
        )
        sid = f"({s0} + 1 + (g - 1) / {STATEMENT_SIZE})"
        insert_select(
            StatementLine,
            statement_lines,
            {
                "statement_id": sid,
                "bank_account_id": bank.replace("g % 2", f"(1 + (g - 1) / {STATEMENT_SIZE}) % 2"),
                "position": f"1 + (g - 1) % {STATEMENT_SIZE}",
                "booking_date": f"{anchor} - ({statements} - (1 + (g - 1) / {STATEMENT_SIZE})) * 7",
                "amount": f"CASE WHEN g % 3 = 0 THEN -{amount} ELSE {amount} END",
                "currency": f"CASE WHEN (1 + (g - 1) / {STATEMENT_SIZE}) % 2 = 0 "
                "THEN 'USD' ELSE 'EUR' END",
                "description": "'Payment INV-' || lpad(g::text, 8, '0')",
                "counterparty_name": "'Customer ' || (g % 10000)",
                "fingerprint": "md5('l' || g)",
                "status": "CASE WHEN g % 4 = 0 THEN 'unmatched' ELSE 'matched' END",
            },
        )
        # Processor attempts over the 120 days to now: 80% succeeded (with a payment), 15%
        # failed with a decline code, 5% unknown.
        attempts = max(100, invoices // 5)
        p0 = _next_id(Payment)
        created = "now() - make_interval(days => g % 120, secs => g % 86400)"
        insert_select(
            Payment,
            attempts,
            {
                "id": f"{p0} + g",
                "customer_id": cust,
                "currency": cust_currency,
                "amount": amount,
                "amount_allocated": "0",
                "method": "'ach'",
                "status": "CASE WHEN g % 20 < 16 THEN 'succeeded' ELSE 'failed' END",
                "received_date": f"({created})::date",
                "processor": "CASE WHEN g % 2 = 0 THEN 'stripe' ELSE 'adyen' END",
                "created_at": created,
            },
        )
        insert_select(
            ProcessorAttempt,
            attempts,
            {
                "processor": "CASE WHEN g % 2 = 0 THEN 'stripe' ELSE 'adyen' END",
                "customer_id": cust,
                "payment_method_id": f"{pm0} + {customer_of}",
                "currency": cust_currency,
                "amount": amount,
                "amount_minor": "10000 + (g * 37) % 990000",
                "status": (
                    "CASE WHEN g % 20 < 16 THEN 'succeeded' WHEN g % 20 < 19 THEN 'failed' "
                    "ELSE 'unknown' END"
                ),
                "idempotency_key": "'bench-attempt:' || g",
                "failure_code": (
                    "CASE WHEN g % 20 BETWEEN 16 AND 18 THEN "
                    "(ARRAY['card_declined', 'insufficient_funds', 'expired_card', "
                    "'do_not_honor', 'fraudulent'])[1 + g % 5] ELSE '' END"
                ),
                "payment_id": f"CASE WHEN g % 20 < 16 THEN {p0} + g END",
                "created_at": created,
                "completed_at": created,
            },
        )
        for table in (
            "billing_customer",
            "billing_invoice",
            "ledger_journalentry",
            "ledger_journalline",
            "reconciliation_statement",
            "billing_payment",
            "billing_paymentallocation",
        ):
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                f"(SELECT max(id) FROM {table}))"
            )
        cursor.execute(
            "CREATE TABLE bench_dashboard_size_v3 (invoices int, lines int, statement_lines int)"
        )
        cursor.execute(
            "INSERT INTO bench_dashboard_size_v3 VALUES (%s, %s, %s)",
            [invoices, lines, statement_lines],
        )
    # The triggers were off: the ledger's daily totals are summed from the lines seeded,
    # as the posting path would have added them.
    day_totals_rebuild()
    connection.ensure_connection()
    connection.connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


# --- Measuring --------------------------------------------------------------------------------


def timed(
    call: Callable[[], Any],
    runs: int,
    *,
    warm: bool = True,
    before: Callable[[], Any] | None = None,
) -> tuple[float, int]:
    """Median ms of ``runs`` calls after a warm-up, and the queries of one more call."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    if warm:
        if before:
            before()
        call()
    times = []
    for _ in range(runs):
        if before:
            before()
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    if before:
        before()
    with CaptureQueriesContext(connection) as captured:
        call()
    return statistics.median(times) * 1000, len(captured.captured_queries)


def scaled(loop: Callable[[int], int], total: int, cap: int) -> tuple[float, str]:
    """Time ``loop(cap)`` (which returns the rows it read) and scale it to ``total`` rows."""
    start = time.perf_counter()
    read = loop(cap)
    elapsed = (time.perf_counter() - start) * 1000
    if read >= total or read == 0:
        return elapsed, f"all {read:,} rows"
    return elapsed * total / read, f"{read:,} of {total:,} rows, scaled"


def finance_admin() -> Any:
    from django.contrib.auth.models import Group, User

    from core.roles import Role

    user, created = User.objects.get_or_create(
        username="bench-finance-admin", defaults={"is_staff": True, "email": "fa@bench.example"}
    )
    if created:
        user.groups.add(Group.objects.get(name=Role.FINANCE_ADMIN))
    return User.objects.get(pk=user.pk)  # fresh permission cache


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per row; the median (5)")
    parser.add_argument("--invoices", type=int, default=None)
    parser.add_argument("--lines", type=int, default=None, help="ledger lines (5,000,000)")
    parser.add_argument("--statement-lines", type=int, default=None)
    parser.add_argument("--naive-rows", type=int, default=100_000, help="cap per naive row")
    parser.add_argument("--quick", action="store_true", help="1/20th of the sizes")
    args = parser.parse_args()
    div = 20 if args.quick else 1
    invoices = args.invoices or 1_000_000 // div
    lines = args.lines or 5_000_000 // div
    statement_lines = args.statement_lines or 200_000 // div

    url, maintenance = database_urls(os.environ.get("DATABASE_URL") or DEFAULT_URL)
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    os.environ["CELERY_BROKER_URL"] = "memory://"
    reuse = ensure_database(url, maintenance, (invoices, lines, statement_lines))

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections
    from django.test import Client
    from django.utils import timezone

    from billing.enums import InvoiceStatus
    from billing.models import Invoice
    from core.aging import aging_bucket
    from core.ledger.enums import AccountRole, AccountType
    from core.ledger.models import Account, JournalLine
    from core.otp import AuthenticatorDevice
    from reconciliation.models import BankAccount
    from reporting import dashboard as dash
    from reporting.kpis import kpi_snapshot_take
    from reporting.models import KpiSnapshot
    from reporting.projection import cash_flow_projection, payment_timing_refresh
    from reporting.statements import balance_sheet, profit_and_loss

    print(f"Migrating {DB_NAME} ...", flush=True)
    call_command("migrate", verbosity=0, interactive=False)
    if not reuse:
        start = time.perf_counter()
        print(
            f"Seeding {invoices:,} invoices, {lines:,} ledger lines, "
            f"{statement_lines:,} statement lines ...",
            flush=True,
        )
        seed(invoices, lines, statement_lines)
        print(f"Seeded in {time.perf_counter() - start:.0f} s", flush=True)
    else:
        print(f"{DB_NAME}: reusing ({invoices:,} / {lines:,} / {statement_lines:,})", flush=True)

    today = timezone.localdate()
    user = finance_admin()
    device, _ = AuthenticatorDevice.objects.get_or_create(user=user, name="phone", confirmed=True)
    client = Client()
    client.force_login(user)
    session = client.session
    session["otp_device_id"] = device.persistent_id
    session.save()
    runs = args.runs
    rows: list[Row] = []

    def run(label: str, call: Callable[[], Any], goal: float | None, **kw: Any) -> Row:
        print(f"  {label} ...", flush=True)
        ms, queries = timed(call, kw.pop("runs", runs), **kw)
        row = Row(label, ms, queries, goal)
        rows.append(row)
        print(f"    {ms:,.0f} ms, {queries} queries", flush=True)
        return row

    def page(path: str) -> Callable[[], Any]:
        def get() -> None:
            response = client.get(path)
            assert response.status_code == 200, (path, response.status_code)

        return get

    # The hourly task first: today's projection reads the payment timing it stores.
    run(
        "payment_timing_refresh (hourly)",
        payment_timing_refresh,
        None,
        runs=min(runs, 3),
        warm=False,
    )
    # Panels as of today, the page's default.
    cash = run("cash_panel", lambda: dash.cash_panel(as_of=today), PANEL_MS)
    ar = run("ar_panel", lambda: dash.ar_panel(as_of=today), PANEL_MS)
    run("ap_panel", lambda: dash.ap_panel(as_of=today), PANEL_MS)
    run("ratio_figures", lambda: dash.ratio_figures(as_of=today), PANEL_MS)
    run("mrr_panel", lambda: dash.mrr_panel(as_of=today), PANEL_MS)
    run("payment_success_panel", lambda: dash.payment_success_panel(as_of=today), PANEL_MS)
    run(
        "projection",
        lambda: cash_flow_projection(as_of=today, weeks=dash.PROJECTION_WEEKS),
        PANEL_MS,
    )
    run("queue_counts", lambda: dash.queue_counts(user, as_of=today), PANEL_MS)
    run("dashboard_figures (all)", lambda: dash.dashboard_figures(user, today), PAGE_MS)
    run("page /admin/", page("/admin/"), PAGE_MS)
    from django.urls import reverse

    run("fragment panels", page(reverse("admin:reporting_dashboard_panels")), PAGE_MS)
    # A past day (the page's ?as_of=): receivables rebuilt from the documents' history.
    past = ANCHOR.replace(day=1) - timedelta(days=1)
    run(f"ar_panel {past}", lambda: dash.ar_panel(as_of=past), PANEL_MS)
    run(f"page /admin/?as_of={past}", page(f"/admin/?as_of={past}"), PAGE_MS)
    pnl = run("profit_and_loss 2025", lambda: profit_and_loss(*YEAR), STATEMENT_MS)
    bs = run("balance_sheet 2025-12-31", lambda: balance_sheet(YEAR[1]), STATEMENT_MS)
    snapshot_runs = min(runs, 3)
    run(
        "kpi_snapshot_take",
        lambda: kpi_snapshot_take(as_of=today),
        SNAPSHOT_MS,
        runs=snapshot_runs,
        warm=False,
        before=lambda: KpiSnapshot.objects.filter(date=today).delete(),
    )

    figures = dash.dashboard_figures(user, today)
    assert figures.ar
    assert figures.cash
    assert figures.payments
    print(
        f"  what the panels saw: {figures.ar.item_count:,} open invoices, "
        f"{len(figures.cash.accounts)} bank accounts, {figures.payments.attempted:,} charges "
        f"in {dash.SUCCESS_WEEKS} weeks, {len(figures.counts)} queue counts",
        flush=True,
    )

    # --- Naive: Python loops over ORM objects, capped at --naive-rows rows each. ----------
    cap = args.naive_rows
    print(f"  naive rows (at most {cap:,} rows each, scaled) ...", flush=True)

    open_invoices = Invoice.objects.filter(status=InvoiceStatus.OPEN, issue_date__lte=today)
    total_open = open_invoices.count()

    def naive_ar(limit: int) -> int:
        totals: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
        n = 0
        for inv in open_invoices.order_by("pk")[:limit].iterator(chunk_size=2000):
            due = inv.total - inv.amount_paid - inv.amount_credited
            bucket = aging_bucket((today - (inv.due_date or today)).days)
            totals[inv.currency][bucket] += due
            totals[inv.currency]["total"] += due
            n += 1
        return n

    ar.naive_ms, ar.note = scaled(naive_ar, total_open, cap)

    cash_ids = {
        *Account.objects.filter(role=AccountRole.CASH).values_list("pk", flat=True),
        *BankAccount.objects.values_list("ledger_account_id", flat=True),
    }
    cash_lines = JournalLine.objects.filter(account_id__in=cash_ids)
    total_cash = cash_lines.count()

    def naive_cash(limit: int) -> int:
        balances: dict[tuple[int, str], Decimal] = defaultdict(Decimal)
        n = 0
        for line in cash_lines.select_related("entry").order_by("pk")[:limit].iterator(2000):
            if line.entry.entry_date <= today:
                balances[(line.account_id, line.currency)] += line.debit - line.credit
            n += 1
        return n

    cash.naive_ms, cash.note = scaled(naive_cash, total_cash, cap)

    year_lines = JournalLine.objects.filter(
        entry__entry_date__gte=YEAR[0], entry__entry_date__lte=YEAR[1]
    )
    total_year = year_lines.count()

    def naive_pnl(limit: int) -> int:
        per: dict[tuple[int, str], Decimal] = defaultdict(Decimal)
        n = 0
        qs = year_lines.select_related("entry", "account").order_by("pk")[:limit]
        for line in qs.iterator(chunk_size=2000):
            if line.account.type in (AccountType.INCOME, AccountType.EXPENSE):
                per[(line.account_id, line.currency)] += line.debit - line.credit
            n += 1
        return n

    pnl.naive_ms, pnl.note = scaled(naive_pnl, total_year, cap)

    to_year_end = JournalLine.objects.filter(entry__entry_date__lte=YEAR[1])
    total_bs = to_year_end.count()

    def naive_bs(limit: int) -> int:
        per: dict[tuple[int, str], Decimal] = defaultdict(Decimal)
        n = 0
        qs = to_year_end.select_related("entry", "account").order_by("pk")[:limit]
        for line in qs.iterator(chunk_size=2000):
            per[(line.account_id, line.currency)] += line.debit - line.credit
            n += 1
        return n

    bs.naive_ms, bs.note = scaled(naive_bs, total_bs, cap)
    connections.close_all()

    counts = f"{invoices:,} invoices, {lines:,} ledger lines, {statement_lines:,} statement lines"
    print(f"\nDashboard on PostgreSQL ({DB_NAME}: {counts}), as of {today}, ")
    print(f"median of {runs} runs after a warm-up (kpi_snapshot_take: {snapshot_runs}), ms:\n")
    head = f"{'row':<30} {'median':>9} {'q':>4} {'goal':>9}  {'':<4} {'naive':>10} {'x naive':>8}"
    print(head)
    print("-" * len(head))
    for r in rows:
        goal = f"< {r.goal_ms:,.0f}" if r.goal_ms else ""
        verdict = "" if r.goal_ms is None else ("pass" if r.median_ms < r.goal_ms else "FAIL")
        naive = f"{r.naive_ms:,.0f}" if r.naive_ms is not None else ""
        ratio = f"{r.naive_ms / r.median_ms:,.1f}x" if r.naive_ms else ""
        print(
            f"{r.label:<30} {r.median_ms:>9,.0f} {r.queries or 0:>4} {goal:>9}  {verdict:<4} "
            f"{naive:>10} {ratio:>8}"
        )
    print("\nnaive = Python loops over ORM objects (one row at a time), timed on at most")
    print(f"{cap:,} rows and scaled linearly to the whole set by rows read:")
    for r in rows:
        if r.note:
            print(f"  {r.label}: {r.note}")
    print(
        "x naive = naive / median (how many times faster the real path is). "
        "Goals (issue 13): panels < 200 ms, page < 1 s, P&L and balance sheet < 500 ms, "
        "KPI snapshot < 60 s."
    )
    failed = [r.label for r in rows if r.goal_ms and r.median_ms >= r.goal_ms]
    print(f"\nmissed: {', '.join(failed)}" if failed else "\nall goals met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
