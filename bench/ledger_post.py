"""Balanced 3-line journal entries posted per second on PostgreSQL, guards on.

    .venv/bin/python bench/ledger_post.py [--quick] [--keep]

Creates its own database (``<name of DATABASE_URL>_bench``), migrates it fresh, measures, and
drops it at the end: the database DATABASE_URL names is never written. Rows measured, all in
the same run so their ratios hold on a busy machine:

- naive: one transaction per entry, ``JournalEntry.save()`` and three ``JournalLine.save()``;
- journal_post: the posting service, one entry per call;
- journal_post_batch: the posting service, many entries per call (the billing run's path);
- django-hordak: its documented multi-leg form (``Transaction`` and three ``Leg``), one
  transaction per entry, with its own balance trigger.

Every entry carries a source and an idempotency key, as the billing run's postings do.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/backoffice"
ENTRY_DATE = date(2025, 1, 15)
GOALS = {"journal_post": 1_500, "journal_post_batch": 12_000}
# naive entries/s on the machine where the goals were set (the reference run).
REFERENCE_NAIVE = 944
LEDGER_TRIGGERS = (
    "ledger_entry_balanced",
    "ledger_line_entry_open",
    "ledger_journalentry_immutable",
    "ledger_journalline_immutable",
)


@dataclass(slots=True)
class Result:
    name: str
    entries: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.entries / self.seconds


def bench_url(url: str) -> tuple[str, str, str]:
    """(bench database URL, bench database name, maintenance database URL) for ``url``."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql", "pgsql", "psql"):
        sys.exit(f"bench/ledger_post.py needs PostgreSQL; DATABASE_URL is {url!r}.")
    name = parts.path.lstrip("/") or "backoffice"
    bench_name = f"{name}_bench"
    return (
        urlunsplit(parts._replace(path=f"/{bench_name}")),
        bench_name,
        urlunsplit(parts._replace(path="/postgres")),
    )


def recreate_database(maintenance_url: str, name: str, *, drop_only: bool = False) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(maintenance_url, autocommit=True) as conn:
        ident = sql.Identifier(name)
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
        if not drop_only:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(ident))


def amounts(i: int) -> tuple[Decimal, Decimal, Decimal]:
    """A deterministic invoice: net, tax and gross for the i-th entry."""
    net = Decimal(100 + i % 997) + Decimal(i % 100) / 100
    tax = (net * Decimal("0.0875")).quantize(Decimal("0.01"))
    return net, tax, net + tax


def run(args: argparse.Namespace) -> list[Result]:
    from django.db import connection, transaction
    from djmoney.money import Money
    from hordak.models import Account as HAccount
    from hordak.models import AccountType as HAccountType
    from hordak.models import Leg, Transaction

    from core.ledger.models import Account, JournalEntry, JournalLine
    from core.ledger.services import EntrySpec, LineSpec, journal_post, journal_post_batch

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tgname FROM pg_trigger WHERE tgname = ANY(%s) AND tgenabled <> 'D'",
            [list(LEDGER_TRIGGERS)],
        )
        found = {row[0] for row in cursor.fetchall()}
    missing = set(LEDGER_TRIGGERS) - found
    assert not missing, f"ledger guards missing or disabled: {sorted(missing)}"

    roles = {a.role: a.pk for a in Account.objects.exclude(role=None)}
    ar, revenue, tax_acct = (
        roles["accounts_receivable"],
        roles["revenue"],
        roles["tax_payable"],
    )
    from django.conf import settings

    currency = settings.SYSTEM_SETTINGS.functional_currency

    # Inputs are built before the clock starts: the timings are of posting, not of the
    # caller's arithmetic.
    n_all = max(args.per_call, args.batch) + args.warmup
    amount_of = {i: amounts(i) for i in range(-args.warmup, n_all)}

    def lines(i: int) -> list[LineSpec]:
        net, tax, gross = amount_of[i]
        return [
            LineSpec(account=ar, currency=currency, debit=gross),
            LineSpec(account=revenue, currency=currency, credit=net),
            LineSpec(account=tax_acct, currency=currency, credit=tax),
        ]

    line_specs = {i: lines(i) for i in range(-args.warmup, args.per_call)}

    def naive(i: int) -> None:
        net, tax, gross = amount_of[i]
        with transaction.atomic():
            entry = JournalEntry(
                entry_date=ENTRY_DATE,
                source=f"bench.naive:{i}",
                idempotency_key=f"bench-naive-{i}",
                functional_currency=currency,
            )
            entry.save()
            for account, debit, credit in ((ar, gross, 0), (revenue, 0, net), (tax_acct, 0, tax)):
                JournalLine(
                    entry=entry,
                    account_id=account,
                    currency=currency,
                    debit=debit,
                    credit=credit,
                    functional_debit=debit,
                    functional_credit=credit,
                ).save()

    def post_one(i: int) -> None:
        journal_post(
            lines=line_specs[i],
            entry_date=ENTRY_DATE,
            source=f"bench.post:{i}",
            idempotency_key=f"bench-post-{i}",
        )

    h_bank = HAccount.objects.create(
        name="Receivables", code="1", type=HAccountType.asset, currencies=[currency]
    )
    h_sales = HAccount.objects.create(
        name="Sales", code="4", type=HAccountType.income, currencies=[currency]
    )
    h_tax = HAccount.objects.create(
        name="Tax", code="2", type=HAccountType.liability, currencies=[currency]
    )

    def hordak(i: int) -> None:
        # The multi-leg form of hordak's documentation: a Transaction and its Legs, atomic.
        net, tax, gross = amount_of[i]
        with transaction.atomic():
            txn = Transaction.objects.create(date=ENTRY_DATE, description=f"bench {i}")
            Leg.objects.create(transaction=txn, account=h_bank, debit=Money(gross, currency))
            Leg.objects.create(transaction=txn, account=h_sales, credit=Money(net, currency))
            Leg.objects.create(transaction=txn, account=h_tax, credit=Money(tax, currency))

    def per_call(name: str, fn: Callable[[int], None], n: int) -> Result:
        for i in range(-args.warmup, 0):
            fn(i)
        start = time.perf_counter()
        for i in range(n):
            fn(i)
        return Result(name, n, time.perf_counter() - start)

    def batch(n: int, size: int) -> Result:
        def specs(lo: int, hi: int) -> list[EntrySpec]:
            return [
                EntrySpec(
                    lines=lines(i),
                    entry_date=ENTRY_DATE,
                    source=f"bench.batch:{i}",
                    idempotency_key=f"bench-batch-{i}",
                )
                for i in range(lo, hi)
            ]

        journal_post_batch(entries=specs(-args.warmup, 0))
        batches = [specs(lo, min(lo + size, n)) for lo in range(0, n, size)]
        start = time.perf_counter()
        for entries in batches:
            posted = journal_post_batch(entries=entries)
        elapsed = time.perf_counter() - start
        assert posted[-1].pk is not None
        return Result(f"journal_post_batch ({size}/call)", n, elapsed)

    results = [
        per_call("naive save()", naive, args.per_call),
        per_call("journal_post", post_one, args.per_call),
        batch(args.batch, args.batch_size),
        per_call("django-hordak", hordak, args.per_call),
    ]

    expected = 2 * (args.per_call + args.warmup) + args.batch + args.warmup
    assert JournalEntry.objects.count() == expected, "entries missing"
    assert JournalLine.objects.count() == 3 * expected, "lines missing"
    assert Transaction.objects.count() == args.per_call + args.warmup
    return results


def report(results: list[Result]) -> str:
    naive = results[0].rate
    rows = [("path", "entries", "seconds", "entries/s", "x naive", "goal")]
    for r in results:
        key = r.name.split(" ")[0]
        goal = GOALS.get(key)
        verdict = ""
        if goal is not None:
            verdict = f">= {goal:,}/s " + ("met" if r.rate >= goal else "MISSED")
        rate, ratio = f"{r.rate:,.0f}", f"{r.rate / naive:.2f}"
        rows.append((r.name, f"{r.entries:,}", f"{r.seconds:.2f}", rate, ratio, verdict))
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = [
            cell.ljust(w) if c in (0, 5) else cell.rjust(w)
            for c, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller run (about 10 seconds)")
    parser.add_argument("--keep", action="store_true", help="keep the bench database afterwards")
    parser.add_argument(
        "--batch-size", type=int, default=1_000, help="entries per journal_post_batch call"
    )
    args = parser.parse_args()
    args.per_call, args.batch, args.warmup = (
        (500, 5_000, 20) if args.quick else (3_000, 30_000, 100)
    )

    url, name, maintenance = bench_url(os.environ.get("DATABASE_URL") or DEFAULT_URL)
    sys.path.insert(0, str(ROOT))
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    recreate_database(maintenance, name)
    try:
        import django
        from django.core.management import call_command
        from django.db import connections

        django.setup()
        print(f"Migrating {name} ...", flush=True)
        call_command("migrate", verbosity=0, interactive=False)
        try:
            results = run(args)
        finally:
            connections.close_all()
    finally:
        if not args.keep:
            recreate_database(maintenance, name, drop_only=True)
    print(f"\nBalanced 3-line entries on PostgreSQL, ledger guards on ({name}):\n")
    print(report(results))
    print(
        f"\nThe goals were set where naive ran at {REFERENCE_NAIVE}/s, i.e. "
        + ", ".join(f"{k} {v / REFERENCE_NAIVE:.1f}x naive" for k, v in GOALS.items())
        + "; on a busy machine compare the ratios."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
