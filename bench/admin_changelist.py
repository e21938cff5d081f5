"""Invoice and journal-entry change lists over a million rows, beside a stock Django admin.

    .venv/bin/python bench/admin_changelist.py [--runs N] [--invoices N] [--entries N]

Uses its own PostgreSQL database ``bo_bench_admin`` beside the one DATABASE_URL names (made
once, migrated, seeded, and kept: a later run reuses it). The seed is SQL (``INSERT ...
SELECT generate_series``, user triggers off while it runs, then VACUUM ANALYZE): 10,000
customers, 1,000,000 invoices (drafts, open, paid; USD/EUR/JPY), 1,000,000 journal entries
of two lines each whose sources name their documents as the services write them
(``billing.invoice:42``), one in a hundred a reversal of the entry before it.

Each page is fetched through Django's test client as a finance admin whose session passed
the second factor, median of ``--runs`` after one warm-up, with its query count and its
slowest query:

- workspace: ``/admin/...``, the project's own admins (django-unfold) as they are at run time;
- stock: ``/stock-admin/...``, a plain ``django.contrib.admin.ModelAdmin`` of the same model
  on a plain ``AdminSite``, given the workspace admin's model-field columns, plain-field
  filters, search fields, date hierarchy and ``list_select_related`` (taken at run time), with
  Django's default paginator and full result count.

Goal (issue 12): every workspace page under 300 ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.ledger_post import DEFAULT_URL  # noqa: E402

GOAL_MS = 300
DB_NAME = "bo_bench_admin"
CUSTOMERS = 10_000
CURRENCIES = ("USD", "EUR", "JPY")
STOCK_ENGINE = "stock_admin"
# Filled in by main() once Django is set up: this module is the bench's URLconf.
urlpatterns: list[Any] = []


@dataclass(slots=True)
class Page:
    label: str
    path: str


@dataclass(slots=True)
class Measure:
    median_ms: float
    best_ms: float
    queries: int
    slowest_ms: float
    slowest_sql: str
    bytes: int


# --- Database ---------------------------------------------------------------------------------


def database_urls(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql", "pgsql", "psql"):
        sys.exit(f"bench/admin_changelist.py needs PostgreSQL; DATABASE_URL is {url!r}.")
    return (
        urlunsplit(parts._replace(path=f"/{DB_NAME}")),
        urlunsplit(parts._replace(path="/postgres")),
    )


def ensure_database(maintenance_url: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(maintenance_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME]).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DB_NAME)))


def insert_select(model: Any, count: int, expressions: dict[str, str]) -> None:
    """``count`` rows of ``model`` from ``generate_series(1, count) AS g``: the given SQL
    expressions, the field's default (Django's, as a parameter) for the other columns."""
    from django.db import connection

    columns, values, params = [], [], []
    for field in model._meta.concrete_fields:
        if field.column in expressions:
            columns.append(field.column)
            values.append(expressions[field.column].replace("%", "%%"))
        elif field.primary_key or field.null:
            continue
        elif field.has_default():
            columns.append(field.column)
            values.append("%s")
            params.append(field.get_db_prep_save(field.get_default(), connection))
        else:
            raise RuntimeError(f"{model.__name__}.{field.name}: no expression and no default")
    table = model._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608
            f"SELECT {', '.join(values)} FROM generate_series(1, {int(count)}) AS g",
            params,
        )


def seed(invoices: int, entries: int) -> None:
    """Customers, invoices and journal entries with two lines each, written by SQL."""
    from django.db import connection, transaction

    from billing.models import Customer, Invoice
    from core.ledger.enums import AccountRole
    from core.ledger.models import Account, JournalEntry, JournalLine

    ar = Account.objects.get(role=AccountRole.ACCOUNTS_RECEIVABLE).pk
    revenue = Account.objects.get(role=AccountRole.REVENUE).pk
    currency = "CASE g % 3 WHEN 0 THEN 'USD' WHEN 1 THEN 'EUR' ELSE 'JPY' END"
    with transaction.atomic(), connection.cursor() as cursor:
        # Bulk load: the ledger's guards and the foreign-key checks stay off for this
        # transaction only (the rows are consistent by construction).
        cursor.execute("SET LOCAL session_replication_role = replica")
        first_customer = (
            Customer.objects.order_by("-pk").values_list("pk", flat=True).first()
        ) or 0
        insert_select(
            Customer,
            CUSTOMERS,
            {
                "name": "'Customer ' || lpad(g::text, 5, '0') || ' Ltd'",
                "email": "'ap' || g || '@customer.example'",
                "currency": currency,
                "created_at": "now() - make_interval(days => g % 900)",
            },
        )
        first_entry = (
            JournalEntry.objects.order_by("-pk").values_list("pk", flat=True).first()
        ) or 0
        # Invoice i is the customer (i % 10,000)'s; one in ten a draft, three open, six paid.
        number = "'INV-2025-' || lpad(g::text, 7, '0')"
        draft, day = "g % 10 = 0", "date '2025-01-01' + (g % 700)"
        minute = "timestamptz '2025-01-01' + make_interval(secs => g * 60)"
        status = "CASE WHEN g % 10 = 0 THEN 'draft' WHEN g % 10 < 4 THEN 'open' ELSE 'paid' END"
        total = "((10000 + (g * 37) % 990000) / 100.0)::numeric(19, 4)"
        cust = f"({first_customer} + 1 + (g % {CUSTOMERS}))"
        cust_currency = currency.replace("g % 3", f"((g % {CUSTOMERS}) + 1) % 3")
        insert_select(
            Invoice,
            invoices,
            {
                "customer_id": cust,
                "number": f"CASE WHEN {draft} THEN NULL ELSE {number} END",
                "status": status,
                "currency": cust_currency,
                "subtotal": total,
                "total": total,
                "amount_paid": f"CASE WHEN g % 10 >= 4 THEN {total} ELSE 0 END",
                "issue_date": f"CASE WHEN {draft} THEN NULL ELSE {day} END",
                "due_date": f"CASE WHEN {draft} THEN NULL ELSE {day} + 30 END",
                "fx_rate": "1",
                "created_at": minute,
                "issued_at": f"CASE WHEN {draft} THEN NULL ELSE {minute} END",
            },
        )
        # Entries: seven in ten an invoice's, two a payment's, one manual (every hundredth
        # of those reversing the entry before it).
        source = (
            "CASE WHEN g % 10 < 7 THEN 'billing.invoice:' || g "
            "WHEN g % 10 < 9 THEN 'billing.payment:' || g ELSE 'manual' END"
        )
        insert_select(
            JournalEntry,
            entries,
            {
                "id": f"{first_entry} + g",
                "entry_date": "date '2025-01-01' + (g % 700)",
                "description": (
                    "CASE WHEN g % 10 < 7 THEN 'Invoice INV-2025-' || lpad(g::text, 7, '0') "
                    "WHEN g % 10 < 9 THEN 'Payment received' ELSE 'Accrual ' || g END"
                ),
                "source": source,
                "idempotency_key": "'bench:' || g",
                "reversal_of_id": f"CASE WHEN g % 1000 = 999 THEN {first_entry} + g - 1 END",
                "functional_currency": "'USD'",
                "created_at": "timestamptz '2025-01-01' + make_interval(secs => g * 60)",
            },
        )
        amount = "((10000 + (g * 37) % 990000) / 100.0)::numeric(19, 4)"
        for side, account in (("debit", ar), ("credit", revenue)):
            other = "credit" if side == "debit" else "debit"
            insert_select(
                JournalLine,
                entries,
                {
                    "entry_id": f"{first_entry} + g",
                    "account_id": str(account),
                    "currency": "'USD'",
                    side: amount,
                    f"functional_{side}": amount,
                    other: "0",
                    f"functional_{other}": "0",
                },
            )
        for table in (
            "billing_customer",
            "billing_invoice",
            "ledger_journalentry",
            "ledger_journalline",
        ):
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                f"(SELECT max(id) FROM {table}))"
            )
    connection.ensure_connection()
    connection.connection.autocommit = True
    with connection.cursor() as cursor:
        for table in (
            "billing_customer",
            "billing_invoice",
            "ledger_journalentry",
            "ledger_journalline",
        ):
            cursor.execute(f"VACUUM ANALYZE {table}")


# --- The two admin sites --------------------------------------------------------------------


def stock_admin_for(workspace: Any) -> type:
    """A plain ModelAdmin configured like ``workspace`` where that needs no theme code."""
    from django.contrib import admin
    from django.core.exceptions import FieldDoesNotExist

    model = workspace.model

    def is_field(name: Any) -> bool:
        if not isinstance(name, str):
            return False
        try:
            model._meta.get_field(name)
        except FieldDoesNotExist:
            return False
        return True

    def changelist_view(self: Any, request: Any, extra_context: Any = None) -> Any:
        response = admin.ModelAdmin.changelist_view(self, request, extra_context)
        response.using = STOCK_ENGINE  # Django's own admin templates, not unfold's
        return response

    return type(
        f"Stock{model.__name__}Admin",
        (admin.ModelAdmin,),
        {
            "list_display": tuple(n for n in workspace.list_display if is_field(n)) or ("__str__",),
            "list_filter": tuple(n for n in workspace.list_filter if is_field(n)),
            "search_fields": tuple(workspace.search_fields),
            "date_hierarchy": workspace.date_hierarchy,
            "list_select_related": workspace.list_select_related,
            "changelist_view": changelist_view,
        },
    )


def install_urls(models: list[Any]) -> Any:
    from django.conf import settings
    from django.contrib import admin
    from django.urls import clear_url_caches, path

    import core.urls

    stock_site = admin.AdminSite(name="stock")
    for model in models:
        stock_site.register(model, stock_admin_for(admin.site._registry[model]))
    urlpatterns[:] = [path("stock-admin/", stock_site.urls), *core.urls.urlpatterns]
    settings.ROOT_URLCONF = __name__
    clear_url_caches()
    return stock_site


def finance_admin_client() -> Any:
    from django.contrib.auth.models import Group, User
    from django.test import Client

    from core.otp import AuthenticatorDevice
    from core.roles import Role

    user, created = User.objects.get_or_create(
        username="bench-finance-admin", defaults={"is_staff": True, "email": "fa@bench.example"}
    )
    if created:
        user.groups.add(Group.objects.get(name=Role.FINANCE_ADMIN))
    device, _ = AuthenticatorDevice.objects.get_or_create(user=user, name="phone", confirmed=True)
    client = Client()
    client.force_login(user)
    session = client.session
    session["otp_device_id"] = device.persistent_id
    session.save()
    return client


def measure(client: Any, path: str, runs: int) -> Measure:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    response = client.get(path)  # warm up: templates, plans, caches
    assert response.status_code == 200, (path, response.status_code, response.content[:300])
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        response = client.get(path)
        times.append(time.perf_counter() - start)
        assert response.status_code == 200, (path, response.status_code)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path)
    slowest = max(captured.captured_queries, key=lambda q: float(q["time"]))
    return Measure(
        median_ms=statistics.median(times) * 1000,
        best_ms=min(times) * 1000,
        queries=len(captured.captured_queries),
        slowest_ms=float(slowest["time"]) * 1000,
        slowest_sql=slowest["sql"],
        bytes=len(response.content),
    )


def pages() -> list[Page]:
    return [
        Page("invoices, first page", "billing/invoice/"),
        Page("invoices, status open", "billing/invoice/?status__exact=open"),
        Page("invoices, search a number", "billing/invoice/?q=INV-2025-0123457"),
        Page("journal entries, first page", "ledger/journalentry/"),
        # As the entry-date filter writes a month (the list has no date hierarchy).
        Page(
            "journal entries, one month",
            "ledger/journalentry/?entry_date__gte=2025-06-01&entry_date__lt=2025-07-01",
        ),
        Page("journal entries, search", "ledger/journalentry/?q=INV-2025-0123457"),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per page; the median (5)")
    parser.add_argument("--invoices", type=int, default=1_000_000)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--sql", action="store_true", help="print each page's slowest query")
    args = parser.parse_args()

    url, maintenance = database_urls(os.environ.get("DATABASE_URL") or DEFAULT_URL)
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    os.environ["CELERY_BROKER_URL"] = "memory://"
    ensure_database(maintenance)

    import django
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connections

    # unfold's templates come first in the project's engine; the stock site renders with
    # an engine that sees only django.contrib.admin's own.
    stock_dir = Path(django.__file__).parent / "contrib" / "admin" / "templates"
    settings.TEMPLATES = [
        *settings.TEMPLATES,
        {
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "NAME": STOCK_ENGINE,
            "DIRS": [stock_dir],
            "APP_DIRS": False,
            "OPTIONS": {
                "context_processors": settings.TEMPLATES[0]["OPTIONS"]["context_processors"]
            },
        },
    ]
    django.setup()
    from billing.models import Invoice
    from core.ledger.models import JournalEntry

    print(f"Migrating {DB_NAME} ...", flush=True)
    call_command("migrate", verbosity=0, interactive=False)
    have = Invoice.objects.count(), JournalEntry.objects.count()
    if not any(have):
        start = time.perf_counter()
        print(f"Seeding {args.invoices:,} invoices, {args.entries:,} entries ...", flush=True)
        seed(args.invoices, args.entries)
        print(f"Seeded in {time.perf_counter() - start:.0f} s", flush=True)
    elif have[0] < args.invoices or have[1] < args.entries:
        sys.exit(f"{DB_NAME} holds {have[0]:,} invoices and {have[1]:,} entries: drop it first")
    invoices, entries = Invoice.objects.count(), JournalEntry.objects.count()
    print(f"{DB_NAME}: {invoices:,} invoices, {entries:,} journal entries", flush=True)

    install_urls([Invoice, JournalEntry])
    client = finance_admin_client()
    results: list[tuple[Page, Measure, Measure]] = []
    for page in pages():
        print(f"  measuring {page.label} ...", flush=True)
        workspace = measure(client, f"/admin/{page.path}", args.runs)
        stock = measure(client, f"/stock-admin/{page.path}", args.runs)
        results.append((page, workspace, stock))
        print(
            f"    workspace {workspace.median_ms:,.0f} ms ({workspace.queries} queries, slowest "
            f"{workspace.slowest_ms:,.0f} ms), stock {stock.median_ms:,.0f} ms "
            f"({stock.queries} queries, slowest {stock.slowest_ms:,.0f} ms)",
            flush=True,
        )
    connections.close_all()

    print(f"\nChange lists on PostgreSQL ({DB_NAME}), median of {args.runs} runs, ms:\n")
    head = f"{'page':<30} {'stock':>7} {'q':>3} {'workspace':>9} {'q':>3} {'x stock':>7}  goal"
    print(head)
    print("-" * (len(head) + 12))
    for page, workspace, stock in results:
        verdict = "met" if workspace.median_ms < GOAL_MS else "MISSED"
        print(
            f"{page.label:<30} {stock.median_ms:>7,.0f} {stock.queries:>3} "
            f"{workspace.median_ms:>9,.0f} {workspace.queries:>3} "
            f"{workspace.median_ms / stock.median_ms:>7.2f}  < {GOAL_MS} ms: {verdict}"
        )
    print("\nslowest query per page (one run, ms): workspace / stock")
    for page, workspace, stock in results:
        print(f"  {page.label:<30} {workspace.slowest_ms:>7,.0f} / {stock.slowest_ms:>7,.0f}")
        if args.sql:
            print(f"    workspace: {workspace.slowest_sql[:400]}")
            print(f"    stock:     {stock.slowest_sql[:400]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
