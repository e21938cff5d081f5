"""The aging report over a million open invoices on PostgreSQL, beside a Python loop.

    .venv/bin/python bench/aging.py [--quick] [--keep] [--invoices N]

Creates its own database (``<name of DATABASE_URL>_bench``) like bench/ledger_post.py,
migrates it, writes N open invoices (default 1,000,000; USD/EUR/JPY, due dates spread over
200 days, some partly paid) with COPY, runs VACUUM ANALYZE as autovacuum would, then times:

- the full API response of ``GET /api/accounts/receivable`` (first page, buckets and totals
  per currency), through Django's test client with an integration token: best and median of
  5 runs;
- a Python-loop baseline: the open invoices read into Python and bucketed there, on a subset
  (--baseline, default 50,000) and extrapolated linearly to N.

Goal (issue #5): the full response under 250 ms.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.ledger_post import DEFAULT_URL, bench_url, recreate_database  # noqa: E402

GOAL_MS = 250
CURRENCIES = ("USD", "EUR", "JPY")


def seed(n: int, today: date) -> None:
    """N open invoices written with COPY (the columns the model needs, defaults as Django's)."""
    from django.db import connection
    from django.utils import timezone

    from billing.models import Customer, Invoice

    customers = [
        Customer.objects.create(name=f"Customer {i}", email=f"c{i}@x.example", currency=c)
        for i, c in enumerate(CURRENCIES * 334)
    ]
    fields = [f for f in Invoice._meta.concrete_fields if not f.primary_key and f.column != "txid"]
    columns = [f.column for f in fields]
    now = timezone.now()
    buffer = io.StringIO()
    for i in range(n):
        customer = customers[i % len(customers)]
        currency = customer.currency
        total = Decimal(100 + i % 5000) if currency == "JPY" else Decimal(10_000 + i % 90_000) / 100
        paid = (
            (total / 4).quantize(Decimal(1) if currency == "JPY" else Decimal("0.01"))
            if i % 7 == 0
            else 0
        )
        due = today - timedelta(days=(i % 200) - 30)
        values = {
            "customer_id": customer.pk,
            "number": f"INV-2026-{i + 1:07d}",
            "status": "open",
            "currency": currency,
            "subtotal": total,
            "tax": 0,
            "total": total,
            "amount_paid": paid,
            "amount_credited": 0,
            "issue_date": due - timedelta(days=30),
            "due_date": due,
            "memo": "",
            "pdf": "",
            "pdf_sha256": "",
            "created_at": now,
            "fx_rate": 1,
        }
        row = []
        for f in fields:
            value = values.get(f.column)
            if value is None and f.column not in values and f.has_default() and not f.null:
                value = f.get_default()
            row.append("\\N" if value is None else str(value))
        buffer.write("\t".join(row) + "\n")
    buffer.seek(0)
    sql = f"COPY billing_invoice ({', '.join(columns)}) FROM STDIN"
    with connection.cursor() as cursor, cursor.copy(sql) as copy:
        while chunk := buffer.read(1 << 20):
            copy.write(chunk)
    connection.connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE billing_invoice")


def python_loop(limit: int, today: date) -> float:
    """Read open invoices into Python and bucket them there; seconds for ``limit`` rows."""
    from billing.models import Invoice

    start = time.perf_counter()
    totals: dict[tuple[str, str], Decimal] = {}
    for invoice in Invoice.objects.filter(status="open").order_by("pk")[:limit]:
        due = invoice.total.amount - invoice.amount_paid.amount - invoice.amount_credited.amount
        if due <= 0:
            continue
        late = (today - invoice.due_date).days
        bucket = (
            "current"
            if late <= 0
            else "1-30"
            if late <= 30
            else "31-60"
            if late <= 60
            else "61-90"
            if late <= 90
            else "90+"
        )
        key = (invoice.currency, bucket)
        totals[key] = totals.get(key, Decimal(0)) + due
    return time.perf_counter() - start


def api_times(runs: int) -> list[float]:
    from rest_framework.test import APIClient

    from core.accounts import api_token_create

    _, token = api_token_create(
        username="bench-integration", role="integration", scopes=["receivables:read"]
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        response = client.get("/api/accounts/receivable")
        assert response.status_code == 200, response.content[:500]
        times.append(time.perf_counter() - start)
    body = response.json()
    print(f"items: {body['count']:,}; currencies in totals: {', '.join(body['totals'])}")
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="100,000 invoices")
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    parser.add_argument("--invoices", type=int)
    parser.add_argument("--baseline", type=int, default=50_000)
    args = parser.parse_args()
    n = args.invoices or (100_000 if args.quick else 1_000_000)

    url, name, maintenance = bench_url(os.environ.get("DATABASE_URL") or DEFAULT_URL)
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    os.environ.setdefault("CELERY_BROKER_URL", "memory://")
    recreate_database(maintenance, name)
    try:
        import django
        from django.core.management import call_command
        from django.db import connections
        from django.utils import timezone

        django.setup()
        print(f"Migrating {name} ...", flush=True)
        call_command("migrate", verbosity=0, interactive=False)
        today = timezone.localdate()
        start = time.perf_counter()
        seed(n, today)
        print(f"Seeded {n:,} open invoices in {time.perf_counter() - start:.1f} s", flush=True)
        times = api_times(5)
        subset = min(args.baseline, n)
        loop = python_loop(subset, today) * n / subset
        connections.close_all()
    finally:
        if not args.keep:
            recreate_database(maintenance, name, drop_only=True)
    best, median = min(times) * 1000, statistics.median(times) * 1000
    print(f"\nAging report over {n:,} open invoices on PostgreSQL ({name}):\n")
    print(f"{'path':<46} {'ms':>9}  {'x loop':>7}  goal")
    label = f"Python loop ({subset:,} rows, extrapolated)"
    print(f"{label:<46} {loop * 1000:>9,.0f}  {1.0:>7.1f}")
    print(
        f"{'GET /api/accounts/receivable (median of 5)':<46} {median:>9,.0f}  "
        f"{loop * 1000 / median:>7.1f}  < {GOAL_MS} ms: {'met' if median < GOAL_MS else 'MISSED'}"
    )
    label = "GET /api/accounts/receivable (best of 5)"
    print(f"{label:<46} {best:>9,.0f}  {loop * 1000 / best:>7.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
