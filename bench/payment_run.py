"""Bills per second through a payment run on PostgreSQL, beside a naive baseline.

    .venv/bin/python bench/payment_run.py [--quick] [--keep] [--bills N]

Creates its own database (``<name of DATABASE_URL>_bench``) like bench/ledger_post.py,
migrates it fresh, seeds vendors and approved bills (their AP posted), measures, checks the
books, and drops it. Rows, in the same run so their ratios hold on a busy machine:

- naive: one payment run per bill through the same services (create, submit, approve,
  export the NACHA file, confirm): what paying bills one at a time costs;
- payment_run: one run over all the other bills: selection (one locking query), approval,
  the NACHA export (validated afterwards, outside the clock) and the payment: bills updated
  with their history rows, one ledger entry.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.ledger_post import DEFAULT_URL, bench_url, recreate_database  # noqa: E402

PAY_DATE = date(2026, 11, 25)
GOAL_RATIO = 10
D = Decimal


@dataclass(slots=True)
class Result:
    name: str
    bills: int
    seconds: float
    phases: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.bills / self.seconds


def seed(n_bills: int, n_vendors: int) -> list[int]:
    """Active vendors with US bank accounts, ``n_bills`` approved bills due by PAY_DATE, and
    their approval posted to the ledger (Dr expenses / Cr AP) in one entry."""
    from django.contrib.auth.models import Group, User
    from djmoney.money import Money

    from core.ledger.enums import AccountRole
    from core.ledger.selectors import account_get_by_role
    from core.ledger.services import LineSpec, journal_post
    from payables.enums import BillStatus, VendorStatus
    from payables.models import Bill, Vendor

    clerk = User.objects.create_user("bench-clerk")
    clerk.groups.add(Group.objects.get(name="ap_clerk"))
    approver = User.objects.create_user("bench-approver")
    approver.groups.add(Group.objects.get(name="approver"))
    controller = User.objects.create_user("bench-controller")
    controller.groups.add(Group.objects.get(name="controller"))
    routings = ("011000015", "021000021", "026009593", "111000025", "121000358")
    vendors = Vendor.objects.bulk_create(
        [
            Vendor(
                name=f"Vendor {i:05d}",
                email=f"ap{i}@vendor.example",
                currency="USD",
                status=VendorStatus.ACTIVE,
                bank_account_holder=f"Vendor {i:05d} LLC",
                bank_routing_number=routings[i % len(routings)],
                bank_account_number=f"{100000000 + i}",
            )
            for i in range(n_vendors)
        ]
    )
    bills = []
    total = D(0)
    for i in range(n_bills):
        amount = D(100 + (i * 7919) % 90_000) / 100
        total += amount
        bill_date = PAY_DATE - timedelta(days=30 + i % 60)
        bills.append(
            Bill(
                vendor=vendors[i % n_vendors],
                number=f"INV-{i:07d}",
                currency="USD",
                bill_date=bill_date,
                due_date=bill_date + timedelta(days=30),
                status=BillStatus.APPROVED,
                total=Money(amount, "USD"),
                total_functional=amount,
            )
        )
    bills = Bill.objects.bulk_create(bills, batch_size=5_000)
    journal_post(
        lines=[
            LineSpec(account_get_by_role(AccountRole.EXPENSES), "USD", debit=total),
            LineSpec(account_get_by_role(AccountRole.ACCOUNTS_PAYABLE), "USD", credit=total),
        ],
        entry_date=PAY_DATE - timedelta(days=30),
        description="Bench bills approved",
        source="bench",
    )
    return [b.pk for b in bills]


def pay(bill_ids: list[int] | None, clerk, approvers) -> tuple[dict[str, float], object]:
    """One payment run over ``bill_ids`` (None: all due), through every step; the phase times
    and the run."""
    from payables.services.runs import (
        payment_run_approve,
        payment_run_confirm,
        payment_run_create,
        payment_run_export,
        payment_run_submit,
    )

    phases: dict[str, float] = {}
    t = time.perf_counter()
    run = payment_run_create(
        currency="USD",
        pay_by=PAY_DATE,
        payment_date=PAY_DATE,
        bill_ids=bill_ids,
        include_expenses=False,
        actor=clerk,
    )
    phases["select"] = time.perf_counter() - t
    t = time.perf_counter()
    payment_run_submit(run_id=run.pk, actor=clerk)
    for approver in approvers:
        payment_run_approve(run_id=run.pk, actor=approver)
    phases["approve"] = time.perf_counter() - t
    t = time.perf_counter()
    payment_run_export(run_id=run.pk, actor=clerk)
    phases["export"] = time.perf_counter() - t
    t = time.perf_counter()
    run = payment_run_confirm(run_id=run.pk, actor=clerk)
    phases["post"] = time.perf_counter() - t
    return phases, run


def run(args: argparse.Namespace) -> list[Result]:
    from django.contrib.auth.models import User
    from django.db import connection

    from core.ledger.selectors import trial_balance
    from payables.enums import BillStatus
    from payables.exports import nacha_validate
    from payables.models import Bill, PaymentRun
    from payables.selectors import ap_subledger_check

    started = time.perf_counter()
    bill_ids = seed(args.naive + args.bills, args.vendors)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(f"Seeded {len(bill_ids):,} bills in {time.perf_counter() - started:.1f} s", flush=True)
    clerk = User.objects.get(username="bench-clerk")
    approver = User.objects.get(username="bench-approver")

    start = time.perf_counter()
    for pk in bill_ids[: args.naive]:
        pay([pk], clerk, [approver])
    naive = Result("naive (one run per bill)", args.naive, time.perf_counter() - start)
    print(f"naive: {naive.rate:,.1f} bills/s", flush=True)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")

    # A run from 100,000.00 needs a controller too: the approver and the controller decide.
    controller = User.objects.get(username="bench-controller")
    start = time.perf_counter()
    phases, big = pay(None, clerk, [approver, controller])
    batch = Result("payment_run (all others)", big.item_count, time.perf_counter() - start, phases)
    print(f"payment_run: {batch.rate:,.0f} bills/s", flush=True)

    # Every bill paid once, the file is a valid NACHA file for the run, the books agree.
    assert batch.bills == args.bills, (batch.bills, args.bills)
    assert not Bill.objects.exclude(status=BillStatus.PAID).exists()
    summary = nacha_validate(PaymentRun.objects.get(pk=big.pk).file.open("rb").read())
    assert len(summary.batches[0].entries) == args.bills
    assert summary.batches[0].total_credit == big.total.amount
    assert trial_balance().is_balanced
    assert ap_subledger_check() == []
    return [naive, batch]


def report(results: list[Result]) -> str:
    naive, batch = results
    lines = [
        f"{'path':<28} {'bills':>8} {'seconds':>8} {'per s':>8} {'x naive':>8}",
        "-" * 64,
    ]
    for r in results:
        lines.append(
            f"{r.name:<28} {r.bills:>8,} {r.seconds:>8.2f} {r.rate:>8,.0f} "
            f"{r.rate / naive.rate:>8.1f}"
        )
    ok = batch.rate / naive.rate >= GOAL_RATIO
    lines.append(f"\ngoal >= {GOAL_RATIO}x naive: " + ("met" if ok else "MISSED"))
    lines.append(
        "payment_run phases (s): " + ", ".join(f"{k} {v:.2f}" for k, v in batch.phases.items())
    )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller run (5,000 bills)")
    parser.add_argument("--keep", action="store_true", help="keep the bench database afterwards")
    parser.add_argument("--bills", type=int, help="bills paid by the one payment run")
    args = parser.parse_args()
    args.naive, default, args.vendors = (50, 5_000, 500) if args.quick else (200, 50_000, 2_000)
    args.bills = args.bills or default

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
            results = run(args)
        finally:
            connections.close_all()
    finally:
        if not args.keep:
            recreate_database(maintenance, name, drop_only=True)
    print(f"\nPayment run over approved bills on PostgreSQL, ledger guards on ({name}):\n")
    print(report(results))
    print(
        "\nBoth rows ran one after the other in this process: on a busy machine compare the ratio."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
