"""Autopay charges per second against the local Stripe fake (issue 14 section 1).

    .venv/bin/python bench/autopay.py [--quick] [--invoices N] [--keep]

Creates its own database (``<name of DATABASE_URL>_bench``) like bench/ledger_post.py,
migrates it, seeds customers with autopay on and a saved Stripe card, issues one invoice each
(the bulk issue path, which schedules their autopay), starts the Stripe fake in a process of
its own, measures, checks that nothing was charged twice, and drops the database. Rows:

- one at a time: ``autopay_charge`` for a sample of invoices, one after the other, in this
  process (claim, open the attempt, PaymentIntent at Stripe, payment recorded and posted);
- task path: the rest (10,000 in all; 2,000 with --quick) charged by ``billing.autopay_run``
  tasks on a real Celery worker (``-c 2``, Redis db 10 as broker), queued each second while
  any is due, as the 5-minute beat does: from the first task to the last invoice paid.

The check after both: the fake holds one PaymentIntent per invoice (none charged twice) and
the database one payment per invoice, every invoice paid.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.ledger_post import DEFAULT_URL, bench_url, recreate_database  # noqa: E402

GOAL = 200
BROKER = "redis://127.0.0.1:6379/10"
D = Decimal


def _fake(port_out: Any, stop: Any, result: Any) -> None:
    """The Stripe fake in its own process; at the end, per invoice, how many intents."""
    from tests.billing.fakes.stripe_server import running_fake_stripe

    with running_fake_stripe() as fake:
        port_out.send(fake.url)
        stop.wait()
        per_invoice: dict[str, int] = {}
        for intent in fake.intents.values():
            invoice = intent["metadata"].get("invoice_id", "")
            per_invoice[invoice] = per_invoice.get(invoice, 0) + 1
        result.send(per_invoice)


@dataclass(slots=True)
class Result:
    name: str
    charges: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.charges / self.seconds


def seed(n: int) -> list[int]:
    from django.db import transaction
    from django.utils import timezone

    from billing.models import Customer, PaymentMethod
    from billing.services.billing_run import InvoiceSpec, invoices_issue_batch
    from billing.services.invoices import LineInput

    customers = Customer.objects.bulk_create(
        [
            Customer(
                name=f"Autopay customer {i:05d}",
                email=f"ap{i}@bench.example",
                currency="USD",
                autopay=True,
                time_zone="UTC",
            )
            for i in range(n)
        ],
        batch_size=2_000,
    )
    PaymentMethod.objects.bulk_create(
        [
            PaymentMethod(
                customer=c,
                type="credit_card",
                processor="stripe",
                processor_customer_id=f"cus_bench{c.pk}",
                processor_token=f"pm_bench{c.pk}",
                card_brand="visa",
                card_last4="4242",
                card_exp_month=12,
                card_exp_year=2035,
                is_default=True,
            )
            for c in customers
        ],
        batch_size=2_000,
    )
    ids: list[int] = []
    for start in range(0, n, 1_000):
        with transaction.atomic():
            invoices = invoices_issue_batch(
                specs=[
                    InvoiceSpec(
                        customer=c,
                        currency="USD",
                        lines=[
                            LineInput(
                                description="Monthly plan",
                                quantity=D(1),
                                unit_price=D(49 + c.pk % 50),
                                tax_rate=D(0),
                            )
                        ],
                    )
                    for c in customers[start : start + 1_000]
                ],
                on_date=timezone.localdate(),
            )
        ids += [i.pk for i in invoices]
    return ids


def _worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "core",
            "worker",
            "-c",
            "2",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-l",
            "WARNING",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def run(args: argparse.Namespace, env: dict[str, str]) -> tuple[list[Result], dict[str, Any]]:
    from django.conf import settings

    from billing.models import Invoice, Payment
    from billing.models.autopay import AutopayStatus, InvoiceAutopay
    from billing.services.autopay import autopay_charge
    from billing.tasks_processors import autopay_run_task

    print(f"Seeding {args.invoices:,} customers with autopay and their invoices ...", flush=True)
    ids = seed(args.invoices)
    import redis

    # What issuing queued (PDFs, emails, the first autopay tries): not what is measured here.
    redis.Redis.from_url(BROKER).flushdb()
    port_in, port_out = multiprocessing.Pipe()
    counts_in, counts_out = multiprocessing.Pipe()
    stop = multiprocessing.Event()
    fake = multiprocessing.Process(target=_fake, args=(port_out, stop, counts_out))
    fake.start()
    url = port_in.recv()
    settings.STRIPE_API_BASE = url
    env = {**env, "STRIPE_API_BASE": url}
    results: list[Result] = []
    try:
        started = time.perf_counter()
        for invoice_id in ids[: args.naive]:
            autopay_charge(invoice_id=invoice_id)
        results.append(Result("one at a time", args.naive, time.perf_counter() - started))

        worker = _worker(env)
        try:
            time.sleep(3)
            due = InvoiceAutopay.objects.filter(status=AutopayStatus.SCHEDULED)
            started = time.perf_counter()
            deadline = started + 1_800
            while due.exists() and time.perf_counter() < deadline:
                autopay_run_task.delay()
                autopay_run_task.delay()
                time.sleep(1)
            elapsed = time.perf_counter() - started
        finally:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(timeout=60)
        paid_by_tasks = InvoiceAutopay.objects.filter(status=AutopayStatus.PAID).count()
        results.append(Result("task path (-c 2)", paid_by_tasks - args.naive, elapsed))
    finally:
        stop.set()
        per_invoice = counts_in.recv()
        fake.join(timeout=30)
    check = {
        "invoices": len(ids),
        "paid": Invoice.objects.filter(pk__in=ids, status="paid").count(),
        "payments": Payment.objects.filter(allocations__invoice_id__in=ids).count(),
        "charged_twice": sum(1 for n in per_invoice.values() if n > 1),
        "intents": sum(per_invoice.values()),
    }
    return results, check


def report(results: list[Result], check: dict[str, Any]) -> str:
    naive, tasks = results
    lines = [f"{'row':<22}{'charges':>9}{'seconds':>10}{'charges/s':>11}{'vs one at a time':>18}"]
    for r in results:
        lines.append(
            f"{r.name:<22}{r.charges:>9,}{r.seconds:>10.2f}{r.rate:>11,.1f}"
            f"{r.rate / naive.rate:>17.1f}x"
        )
    lines.append(f"\ngoal >= {GOAL} charges/s: " + ("met" if tasks.rate >= GOAL else "MISSED"))
    ok = (
        check["charged_twice"] == 0
        and check["paid"] == check["invoices"]
        and check["payments"] == check["invoices"]
        and check["intents"] == check["invoices"]
    )
    lines.append(
        f"check: {check['paid']:,} of {check['invoices']:,} invoices paid, "
        f"{check['payments']:,} payments, {check['intents']:,} intents at Stripe, "
        f"{check['charged_twice']} charged twice: " + ("ok" if ok else "FAILED")
    )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2,000 invoices instead of 10,000")
    parser.add_argument("--keep", action="store_true", help="keep the bench database afterwards")
    parser.add_argument("--invoices", type=int, help="invoices due for autopay")
    args = parser.parse_args()
    args.invoices = args.invoices or (2_000 if args.quick else 10_000)
    args.naive = 100 if args.quick else 300

    url, name, maintenance = bench_url(os.environ.get("DATABASE_URL") or DEFAULT_URL)
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    os.environ["CELERY_BROKER_URL"] = BROKER
    os.environ["STRIPE_SECRET_KEY"] = "sk_test_fake"  # noqa: S105 - the local fake's key
    os.environ["STRIPE_TIMEOUT_SECONDS"] = "10"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "core.settings"}
    recreate_database(maintenance, name)
    try:
        import django
        from django.core.management import call_command
        from django.db import connections

        django.setup()
        print(f"Migrating {name} ...", flush=True)
        call_command("migrate", verbosity=0, interactive=False)
        import redis

        redis.Redis.from_url(BROKER).flushdb()
        try:
            results, check = run(args, env)
        finally:
            connections.close_all()
    finally:
        if not args.keep:
            recreate_database(maintenance, name, drop_only=True)
    print(f"\nAutopay against the local Stripe fake ({name}):\n")
    print(report(results, check))
    print("\nBoth rows ran in this run, one after the other: on a busy machine compare the ratio.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
