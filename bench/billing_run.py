"""Invoices per second through the billing run on PostgreSQL, beside a naive baseline.

    .venv/bin/python bench/billing_run.py [--quick] [--keep] [--subscriptions N]

Creates its own database (``<name of DATABASE_URL>_bench``) like bench/ledger_post.py,
migrates it fresh, seeds subscriptions (flat, per-seat, metered and tiered prices in USD, EUR
and JPY; taxed, exempt and reverse-charge customers; usage events; FX rates), measures, and
drops it at the end. Rows, all in the same run so their ratios hold on a busy machine:

- naive: ``subscription_bill_period`` for a sample of subscriptions, one at a time (the
  per-period path: one transaction per invoice with ``invoice_create`` and ``invoice_issue``,
  each line, number, posting and snapshot written by its own queries);
- billing_run: the real run over all the other subscriptions (chunks, one transaction each);
- PDF: ``invoice_pdf_render`` from stored snapshots, documents per second, apart from the run
  (workers render after commit; the run only queues the delivery).

Invoices per second count the whole issue: lines, tax, numbers, ledger postings, snapshots,
usage and subscription updates, and the delivery task queued after commit (to an in-memory
broker, so nothing is rendered inline).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.ledger_post import DEFAULT_URL, bench_url, recreate_database  # noqa: E402

AS_OF = date(2026, 5, 31)
GOAL_RATE = 1_000
GOAL_RATIO = 10
CURRENCIES = ("USD", "EUR", "JPY")
D = Decimal


@dataclass(slots=True)
class Result:
    name: str
    invoices: int
    seconds: float
    lines: int = 0
    entries: int = 0

    @property
    def rate(self) -> float:
        return self.invoices / self.seconds


def seed(n: int) -> list[int]:
    """``n`` subscriptions, each with one period ended by AS_OF: pks in creation order."""
    from billing.models import (
        Customer,
        Price,
        Product,
        Subscription,
        SubscriptionItem,
        TaxRate,
        UsageEvent,
    )
    from billing.pricing import period_end
    from core.fx import fx_rate_set

    fx_rate_set(base="EUR", quote="USD", rate=D("1.0825"), rate_date=AS_OF)
    fx_rate_set(base="JPY", quote="USD", rate=D("0.0066"), rate_date=AS_OF)
    TaxRate.objects.bulk_create(
        [
            TaxRate(jurisdiction="US-CA", name="California", rate=D("0.0725")),
            TaxRate(jurisdiction="DE", name="Germany", rate=D("0.19")),
        ]
    )
    # Per currency: a flat plan, a per-seat price, metered API calls (sum) and storage
    # (graduated tiers, max); JPY amounts in yen.
    scale = {"USD": D(1), "EUR": D("0.9"), "JPY": D(150)}
    prices: dict[str, dict[str, Price]] = {}
    for currency in CURRENCIES:
        k = scale[currency]
        plan, seats, api, storage = Product.objects.bulk_create(
            [
                Product(name=f"Starter {currency}"),
                Product(name=f"Seats {currency}"),
                Product(name=f"API calls {currency}"),
                Product(name=f"Storage {currency}"),
            ]
        )
        prices[currency] = dict(
            zip(
                ("flat", "seats", "api", "storage"),
                Price.objects.bulk_create(
                    [
                        Price(
                            product=plan,
                            currency=currency,
                            type="flat",
                            interval="month",
                            unit_amount=D("29.00") * k,
                            nickname="Starter",
                            tax_inclusive=currency == "EUR",
                        ),
                        Price(
                            product=seats,
                            currency=currency,
                            type="per_unit",
                            interval="month",
                            unit_amount=D("12.50") * k,
                        ),
                        Price(
                            product=api,
                            currency=currency,
                            type="per_unit",
                            interval="month",
                            unit_amount=D("0.0020") * k,
                            metric="api_calls",
                            aggregation="sum",
                        ),
                        Price(
                            product=storage,
                            currency=currency,
                            type="tiered_graduated",
                            interval="month",
                            tiers=[
                                {"up_to": 10, "unit_amount": "0", "flat_amount": "0"},
                                {"up_to": 100, "unit_amount": str(D("0.25") * k)},
                                {"up_to": None, "unit_amount": str(D("0.10") * k)},
                            ],
                            metric="storage_gb",
                            aggregation="max",
                        ),
                    ]
                ),
                strict=True,
            )
        )
    jurisdictions = ("US-CA", "DE", "", "")
    customers = Customer.objects.bulk_create(
        [
            Customer(
                name=f"Customer {i:05d}",
                email=f"billing{i}@customer.example",
                address_line1=f"{i} Main Street",
                city="Springfield",
                postal_code="12345",
                country="US",
                currency=CURRENCIES[i % 3],
                payment_terms=(None, 14, 30)[i % 3],
                tax_jurisdiction=jurisdictions[i % 4],
                tax_exempt=i % 10 == 7,
                reverse_charge=i % 10 == 9,
            )
            for i in range(n)
        ]
    )
    subs = []
    for i, customer in enumerate(customers):
        start = date(2026, 4, 1 + i % 28)
        subs.append(
            Subscription(
                customer=customer,
                currency=customer.currency,
                interval="month",
                anchor_day=start.day,
                started_on=start,
                current_period_start=start,
                current_period_end=period_end(start, "month", start.day),
            )
        )
    subs = Subscription.objects.bulk_create(subs)
    # Five shapes: flat; flat and seats; seats; flat and metered calls; seats and both meters.
    shapes = (
        (("flat", 1),),
        (("flat", 1), ("seats", 3)),
        (("seats", 5),),
        (("flat", 1), ("api", 1)),
        (("seats", 2), ("api", 1), ("storage", 1)),
    )
    items = SubscriptionItem.objects.bulk_create(
        [
            SubscriptionItem(subscription=sub, price=prices[sub.currency][key], quantity=D(qty))
            for i, sub in enumerate(subs)
            for key, qty in shapes[i % 5]
        ]
    )
    events = []
    for item in items:
        price = item.price
        if not price.metric:
            continue
        sub = item.subscription
        for n_event in range(3):
            at = datetime.combine(
                sub.current_period_start + timedelta(days=3 + 7 * n_event),
                datetime.min.time(),
                tzinfo=UTC,
            ) + timedelta(hours=9)
            quantity = D(1000 + 37 * (item.pk % 50) + n_event * 250)
            if price.metric == "storage_gb":
                quantity = D(20 + (item.pk + n_event * 13) % 90)
            events.append(
                UsageEvent(
                    item=item,
                    metric=price.metric,
                    quantity=quantity,
                    occurred_at=at,
                    idempotency_key=f"seed-{item.pk}-{n_event}",
                )
            )
    UsageEvent.objects.bulk_create(events, batch_size=5_000)
    return [s.pk for s in subs]


def counts(invoice_ids: list[int]) -> tuple[int, int]:
    """(invoice lines, ledger entries) of these invoices."""
    from billing.models import Invoice, InvoiceLine

    lines = InvoiceLine.objects.filter(invoice_id__in=invoice_ids).count()
    entries = (
        Invoice.objects.filter(pk__in=invoice_ids, ledger_entry__isnull=False)
        .values("ledger_entry")
        .count()
    )
    return lines, entries


def run(args: argparse.Namespace) -> list[Result]:
    from django.db import connection

    from billing.checks import ar_subledger_check
    from billing.documents import invoice_pdf_render
    from billing.models import Invoice, Subscription
    from billing.services.billing_run import billing_run, subscription_bill_period
    from core.ledger.selectors import trial_balance

    started = time.perf_counter()
    sub_ids = seed(args.naive + args.subscriptions)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(
        f"Seeded {len(sub_ids):,} subscriptions in {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    # The naive sample comes from the same mix (every shape, currency and tax case).
    naive_ids = sub_ids[: args.naive]

    start = time.perf_counter()
    naive_invoices = [
        subscription_bill_period(subscription_id=pk, as_of=AS_OF).pk for pk in naive_ids
    ]
    naive = Result("naive (subscription_bill_period, one at a time)", len(naive_ids), 0.0)
    naive.seconds = time.perf_counter() - start
    naive.lines, naive.entries = counts(naive_invoices)
    print(f"naive: {naive.rate:,.0f} invoices/s", flush=True)
    # Statistics as autovacuum keeps them on a live database. Without this the ledger's
    # balance trigger keeps the plan it cached while the ledger was empty (a scan of all
    # lines per entry), and every chunk commits slower than the last.
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")

    start = time.perf_counter()
    outcome = billing_run(as_of=AS_OF)
    elapsed = time.perf_counter() - start
    assert not outcome.failures, outcome.failures
    batch = Result("billing_run (all others)", len(outcome.invoices), elapsed)
    batch.lines, batch.entries = counts(outcome.invoices)
    print(f"billing_run: {batch.rate:,.0f} invoices/s", flush=True)

    # Every subscription billed exactly once, numbers gapless, the books agree.
    assert batch.invoices == args.subscriptions, (batch.invoices, args.subscriptions)
    assert Invoice.objects.count() == len(sub_ids)
    assert not Subscription.objects.filter(current_period_end__lte=AS_OF).exists()
    numbers = sorted(Invoice.objects.values_list("number", flat=True))
    assert numbers == [f"INV-2026-{n:06d}" for n in range(1, len(sub_ids) + 1)]
    assert trial_balance().is_balanced
    assert ar_subledger_check() == []

    snapshots = list(
        Invoice.objects.filter(pk__in=outcome.invoices[: args.pdfs]).values_list(
            "snapshot", flat=True
        )
    )
    invoice_pdf_render(snapshots[0], company=snapshots[0]["company"])  # fonts, templates
    start = time.perf_counter()
    for snapshot in snapshots:
        assert invoice_pdf_render(snapshot, company=snapshot["company"]).startswith(b"%PDF")
    pdf = Result("PDF render from snapshot (workers)", len(snapshots), time.perf_counter() - start)
    return [naive, batch, pdf]


def report(results: list[Result]) -> str:
    naive, batch, pdf = results
    rows = [("path", "invoices", "lines", "entries", "seconds", "per s", "x naive", "goal")]
    for r in (naive, batch):
        goal = ""
        if r is batch:
            ok = r.rate >= GOAL_RATE and r.rate / naive.rate >= GOAL_RATIO
            goal = f">= {GOAL_RATE:,}/s and >= {GOAL_RATIO}x naive: " + ("met" if ok else "MISSED")
        rows.append(
            (
                r.name,
                f"{r.invoices:,}",
                f"{r.lines:,}",
                f"{r.entries:,}",
                f"{r.seconds:.2f}",
                f"{r.rate:,.0f}",
                f"{r.rate / naive.rate:.1f}",
                goal,
            )
        )
    rows.append(
        (pdf.name, f"{pdf.invoices:,}", "", "", f"{pdf.seconds:.2f}", f"{pdf.rate:,.1f}", "", "")
    )
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    out = []
    for n, row in enumerate(rows):
        cells = [
            cell.ljust(w) if c in (0, 7) else cell.rjust(w)
            for c, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        out.append("  ".join(cells).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller run (2,000 subscriptions)")
    parser.add_argument("--keep", action="store_true", help="keep the bench database afterwards")
    parser.add_argument("--subscriptions", type=int, help="subscriptions billed by billing_run")
    args = parser.parse_args()
    args.naive, default, args.pdfs = (200, 2_000, 10) if args.quick else (500, 10_000, 20)
    args.subscriptions = args.subscriptions or default

    url, name, maintenance = bench_url(os.environ.get("DATABASE_URL") or DEFAULT_URL)
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    # Delivery tasks go to a broker nobody consumes: queued after commit, never run inline.
    os.environ["CELERY_BROKER_URL"] = "memory://"
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
    print(f"\nSubscription invoices on PostgreSQL, ledger guards on ({name}, as of {AS_OF}):\n")
    print(report(results))
    print(
        "\nnaive and billing_run ran one after the other in this process: on a busy machine "
        "compare the ratio.\nPDFs are rendered by workers after commit, never in the run."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
