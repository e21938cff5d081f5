"""Overdue invoices per second through the daily collections run on PostgreSQL, beside a
one-invoice-at-a-time baseline.

    .venv/bin/python bench/dunning.py [--quick] [--keep] [--invoices N] [--baseline N]

Creates its own database (``<name of DATABASE_URL>_bench``) like bench/ledger_post.py,
migrates it fresh, writes N overdue invoices (default 100,000) with COPY (USD/EUR/JPY, 1,000
customers, 1 to 60 days past due, some partly paid) and one opening ledger entry per
currency so that AR equals the open items, runs VACUUM ANALYZE as autovacuum would, then
times, in the same process so the ratio holds on a busy machine:

- naive: ``collections_invoice_handle`` for a subset (--baseline, default 300) of the
  invoices, one at a time (each invoice's lock, timeline and fee reads, steps, emails and
  late fee invoice with its own posting), extrapolated to N;
- collections_run: the real daily run over all the others (chunks of invoices per
  transaction, reads per chunk, late fees issued as one block of numbers with their
  postings through ``journal_post_batch``).

Every invoice has work on the run day: the steps whose day has come (the latest email sent,
the earlier ones recorded as skipped) and, past the 10-day grace period, its late fees.
Emails are rendered and handed to a dummy backend. After the run the script checks that
each invoice has each step due once, each fee once, the trial balance balances and the AR
sub-ledger agrees with the books.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.ledger_post import DEFAULT_URL, bench_url, recreate_database  # noqa: E402

AS_OF = date(2026, 6, 30)
CURRENCIES = ("USD", "EUR", "JPY")
CUSTOMERS = 1_000
D = Decimal


@dataclass(slots=True)
class Result:
    name: str
    invoices: int
    seconds: float
    actions: int = 0

    @property
    def rate(self) -> float:
        return self.invoices / self.seconds


def seed(n: int) -> None:
    """N open overdue invoices by COPY, and one entry per currency posting their AR."""
    from django.db import connection
    from django.utils import timezone

    from billing.models import Customer, Invoice
    from core.fx import fx_rate_set
    from core.ledger.enums import AccountRole
    from core.ledger.models import Account
    from core.ledger.services import LineSpec, journal_post

    for currency, rate in (("EUR", D("1.0825")), ("JPY", D("0.0066"))):
        for days in range(0, 130, 5):
            fx_rate_set(
                base=currency, quote="USD", rate=rate, rate_date=AS_OF - timedelta(days=days)
            )
    customers = Customer.objects.bulk_create(
        [
            Customer(
                name=f"Customer {i:04d}",
                email=f"ap{i}@customer.example",
                currency=CURRENCIES[i % 3],
                payment_terms=30,
            )
            for i in range(CUSTOMERS)
        ]
    )
    fields = [f for f in Invoice._meta.concrete_fields if not f.primary_key and f.column != "txid"]
    columns = [f.column for f in fields]
    now = timezone.now()
    buffer = io.StringIO()
    totals: dict[str, Decimal] = dict.fromkeys(CURRENCIES, D(0))
    for i in range(n):
        customer = customers[i % CUSTOMERS]
        currency = customer.currency
        total = D(1000 + i % 50_000) if currency == "JPY" else D(10_000 + i % 90_000) / 100
        paid = (total / 4).quantize(D(1) if currency == "JPY" else D("0.01")) if i % 7 == 0 else 0
        due = AS_OF - timedelta(days=1 + i % 60)
        totals[currency] += total - paid
        values = {
            "customer_id": customer.pk,
            "number": f"INV-2025-{i + 1:07d}",
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
    ar = Account.objects.get(role=AccountRole.ACCOUNTS_RECEIVABLE)
    revenue = Account.objects.get(role=AccountRole.REVENUE)
    for currency, amount in totals.items():
        journal_post(
            lines=[
                LineSpec(account=ar, currency=currency, debit=amount),
                LineSpec(account=revenue, currency=currency, credit=amount),
            ],
            entry_date=AS_OF - timedelta(days=120),
            description=f"Opening receivables {currency}",
            source="bench",
        )
    connection.connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


def run(n: int, baseline: int) -> list[Result]:
    from django.db import connection

    from billing.checks import ar_subledger_check
    from billing.models import Invoice
    from core.ledger.selectors import trial_balance
    from receivables.models import CollectionEvent, DunningPolicy, LateFee
    from receivables.services.collections import collections_invoice_handle, collections_run

    # The naive sample is spread over the whole mix (every currency and days past due).
    ids = list(Invoice.objects.order_by("pk").values_list("pk", flat=True))
    step = max(len(ids) // baseline, 1)
    sample = ids[::step][:baseline]
    policy = DunningPolicy.objects.prefetch_related("steps").get(is_default=True)
    start = time.perf_counter()
    naive_actions = sum(
        len(collections_invoice_handle(invoice_id=pk, policy=policy, as_of=AS_OF, actor=None))
        for pk in sample
    )
    naive = Result(
        "naive (one invoice at a time)", len(sample), time.perf_counter() - start, naive_actions
    )
    print(f"naive: {naive.rate:,.0f} invoices/s", flush=True)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")

    start = time.perf_counter()
    outcome = collections_run(as_of=AS_OF)
    elapsed = time.perf_counter() - start
    assert not outcome.failures, list(outcome.failures.items())[:5]
    real = Result("collections_run (all others)", n - len(sample), elapsed, len(outcome.actions))
    print(f"collections_run: {real.rate:,.0f} invoices/s", flush=True)

    # Each invoice's steps once, each fee once, nothing left to do, the books agree.
    assert outcome.invoices_seen == n, (outcome.invoices_seen, n)
    pairs = CollectionEvent.objects.values("invoice_id", "step_id").distinct().count()
    assert pairs == CollectionEvent.objects.count()
    fees = LateFee.objects.values("invoice_id", "sequence").distinct().count()
    assert fees == LateFee.objects.count()
    handled = set(CollectionEvent.objects.values_list("invoice_id", flat=True).distinct())
    assert len(handled) == n, (len(handled), n)
    assert collections_run(as_of=AS_OF).actions == []
    assert trial_balance().is_balanced
    assert ar_subledger_check() == []
    print(
        f"events: {CollectionEvent.objects.count():,}; late fees: {LateFee.objects.count():,}",
        flush=True,
    )
    return [naive, real]


def report(results: list[Result], n: int) -> str:
    naive, real = results
    extrapolated = n / naive.rate
    lines = [
        f"{'path':<44} {'invoices':>9} {'actions':>9} {'seconds':>9} {'per s':>8} {'x naive':>8}",
        "-" * 92,
        f"{naive.name:<44} {naive.invoices:>9,} {naive.actions:>9,} {naive.seconds:>9.2f} "
        f"{naive.rate:>8,.0f} {1.0:>8.1f}",
        f"{'  naive extrapolated to ' + format(n, ','):<44} {n:>9,} {'':>9} "
        f"{extrapolated:>9.1f} {naive.rate:>8,.0f} {1.0:>8.1f}",
        f"{real.name:<44} {real.invoices:>9,} {real.actions:>9,} {real.seconds:>9.2f} "
        f"{real.rate:>8,.0f} {real.rate / naive.rate:>8.1f}",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="10,000 invoices")
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    parser.add_argument("--invoices", type=int)
    parser.add_argument("--baseline", type=int)
    args = parser.parse_args()
    n = args.invoices or (10_000 if args.quick else 100_000)
    baseline = min(args.baseline or (100 if args.quick else 300), n // 2)

    url, name, maintenance = bench_url(os.environ.get("DATABASE_URL") or DEFAULT_URL)
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    # Fee invoices queue their delivery to a broker nobody consumes; emails are rendered and
    # handed to a backend that sends nothing.
    os.environ["CELERY_BROKER_URL"] = "memory://"
    os.environ["EMAIL_URL"] = "dummymail://"
    recreate_database(maintenance, name)
    try:
        import django
        from django.core.management import call_command
        from django.db import connections

        django.setup()
        print(f"Migrating {name} ...", flush=True)
        call_command("migrate", verbosity=0, interactive=False)
        start = time.perf_counter()
        seed(n)
        print(f"Seeded {n:,} overdue invoices in {time.perf_counter() - start:.1f} s", flush=True)
        try:
            results = run(n, baseline)
        finally:
            connections.close_all()
    finally:
        if not args.keep:
            recreate_database(maintenance, name, drop_only=True)
    print(f"\nDaily collections run over {n:,} overdue invoices on PostgreSQL ({name}):\n")
    print(report(results, n))
    print(
        "\nnaive and collections_run ran one after the other in this process: on a busy "
        "machine compare the ratio."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
