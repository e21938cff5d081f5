"""Seconds to create and issue one invoice of 1,000 lines through the API, on PostgreSQL.

    .venv/bin/python bench/invoice_create.py [--lines N] [--repeat N] [--keep]

Creates its own database (``<name of DATABASE_URL>_bench``) like bench/ledger_post.py,
migrates it fresh, measures, and drops it. Rows, in the same run so their ratio holds on a
busy machine:

- naive: the same lines written one ``InvoiceLine.save()`` at a time (a query per line, what
  a per-line path costs), the invoice row and its totals around them;
- POST /api/billing/invoices: the real request with ``issue: true``, through the
  integration token: validation of every line, the bounds, the draft with its lines in one
  insert, the number, the ledger posting and the frozen snapshot.

Goal (issue 11): under 2 s for 1,000 lines, the lines cap of the system settings.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.ledger_post import DEFAULT_URL, bench_url, recreate_database  # noqa: E402

GOAL_SECONDS = 2.0
D = Decimal


def _lines(count: int) -> list[dict[str, str]]:
    return [
        {
            "description": f"Usage item {n}",
            "quantity": str(1 + n % 7),
            "unit_price": f"{1 + n % 97}.{n % 10000:04d}",
        }
        for n in range(count)
    ]


def naive(customer_id: int, lines: list[dict[str, str]]) -> float:
    """The lines saved one at a time inside one transaction: the per-line baseline."""
    from django.db import transaction
    from djmoney.money import Money

    from billing.models import Invoice, InvoiceLine
    from core.money import round_money

    start = time.perf_counter()
    with transaction.atomic():
        invoice = Invoice.objects.create(customer_id=customer_id, currency="USD")
        subtotal = D(0)
        for position, line in enumerate(lines, start=1):
            quantity, price = D(line["quantity"]), D(line["unit_price"])
            amount = round_money(quantity * price, "USD")
            subtotal += amount
            InvoiceLine(
                invoice=invoice,
                position=position,
                currency="USD",
                description=line["description"],
                quantity=quantity,
                unit_price=Money(price, "USD"),
                tax_rate=D(0),
                amount=Money(amount, "USD"),
                tax_amount=Money(0, "USD"),
            ).save()
        invoice.subtotal = invoice.total = Money(subtotal, "USD")
        invoice.save(update_fields=["subtotal", "total"])
    return time.perf_counter() - start


def api(client, customer_id: int, lines: list[dict[str, str]]) -> float:
    start = time.perf_counter()
    response = client.post(
        "/api/billing/invoices",
        {"customer": customer_id, "lines": lines, "issue": True},
        format="json",
    )
    elapsed = time.perf_counter() - start
    assert response.status_code == 201, response.content[:500]
    assert response.json()["status"] == "open"
    return elapsed


def run(args: argparse.Namespace) -> tuple[float, float]:
    from rest_framework.test import APIClient

    from billing.services.customers import customer_create
    from core.accounts import api_token_create
    from core.ledger.selectors import trial_balance

    user, token = api_token_create(
        username="bench-integration", role="integration", scopes=["billing:write"]
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    customer = customer_create(
        actor=user, name="Bench Corp", email="ap@bench.example", currency="USD"
    )
    lines = _lines(args.lines)
    api(client, customer.pk, lines[:10])  # warm up: URL resolution, serializers, plans
    naive_s = statistics.median(naive(customer.pk, lines) for _ in range(args.repeat))
    api_s = statistics.median(api(client, customer.pk, lines) for _ in range(args.repeat))
    assert trial_balance().is_balanced
    return naive_s, api_s


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--lines", type=int, default=1000, help="lines per invoice (1,000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per row; the median (3)")
    parser.add_argument("--keep", action="store_true", help="keep the bench database afterwards")
    args = parser.parse_args()

    url, name, maintenance = bench_url(os.environ.get("DATABASE_URL") or DEFAULT_URL)
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
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
            naive_s, api_s = run(args)
        finally:
            connections.close_all()
    finally:
        if not args.keep:
            recreate_database(maintenance, name, drop_only=True)
    print(
        f"\nOne invoice of {args.lines:,} lines on PostgreSQL ({name}), median of {args.repeat}:\n"
    )
    print(f"{'path':<40} {'seconds':>8} {'x naive':>8}")
    print("-" * 58)
    print(f"{'naive (a save() per line, no issue)':<40} {naive_s:>8.2f} {1:>8.2f}")
    print(f"{'POST /api/billing/invoices, issued':<40} {api_s:>8.2f} {api_s / naive_s:>8.2f}")
    verdict = "met" if api_s < GOAL_SECONDS else "MISSED"
    print(f"\ngoal: under {GOAL_SECONDS:.0f} s for 1,000 lines: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
