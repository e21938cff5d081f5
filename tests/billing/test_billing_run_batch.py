"""The chunked billing run (issue 4): the same invoices as the per-period path, written in
bulk; crashes, concurrent runs and refusals bill every period exactly once, with gapless
numbers and books that agree."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection, transaction

from billing.checks import ar_subledger_check
from billing.enums import InvoiceStatus, SubscriptionStatus
from billing.models import Invoice, PendingItem, Subscription, TaxRate, UsageEvent
from billing.services import billing_run as run_module
from billing.services.billing_run import billing_run, subscription_bill_period
from billing.services.customers import customer_create
from billing.services.subscriptions import (
    ItemInput,
    UsageInput,
    price_create,
    product_create,
    subscription_cancel,
    subscription_change,
    subscription_create,
    usage_ingest,
)
from core.exceptions import DomainError
from core.fx import fx_rate_set
from core.ledger.models import JournalEntry
from core.ledger.selectors import trial_balance
from core.numbering import document_numbers_take

D = Decimal
AS_OF = date(2026, 5, 15)


def at(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


@pytest.fixture
def delivered(monkeypatch) -> list[str]:
    """Invoice ids whose delivery was queued (after commit), instead of rendering PDFs."""
    queued: list[str] = []
    monkeypatch.setattr(run_module, "_queue_deliveries", queued.extend)
    return queued


@pytest.fixture
def catalog(db) -> dict[str, Any]:
    """Prices of every type in USD, EUR and JPY, FX rates on the run's day, one tax rate."""
    fx_rate_set(base="EUR", quote="USD", rate=D("1.0825"), rate_date=AS_OF)
    fx_rate_set(base="JPY", quote="USD", rate=D("0.0066"), rate_date=AS_OF)
    TaxRate.objects.create(jurisdiction="US-CA", name="California", rate=D("0.0725"))

    def price(name: str, currency: str, **kwargs: Any):
        product = product_create(actor=None, name=name)
        kwargs.setdefault("type", "per_unit")
        return price_create(
            actor=None, product_id=product.pk, currency=currency, interval="month", **kwargs
        )

    tiers = [
        {"up_to": 10, "unit_amount": "0", "flat_amount": "0"},
        {"up_to": 100, "unit_amount": "0.25"},
        {"up_to": None, "unit_amount": "0.10", "flat_amount": "1"},
    ]
    return {
        "seats": price("Seats", "USD", unit_amount=D("12.50"), nickname="Pro"),
        "big": price("Business", "USD", unit_amount=D("40.00")),
        "calls": price("API", "USD", unit_amount=D("0.0020"), metric="calls", aggregation="sum"),
        "storage": price(
            "Storage", "USD", type="tiered_graduated", tiers=tiers, metric="gb", aggregation="max"
        ),
        "users": price("Users", "USD", unit_amount=D("3.00"), metric="users", aggregation="unique"),
        "devices": price("Devices", "USD", type="package", unit_amount=D("5"), package_size=10),
        "eur_flat": price(
            "Starter", "EUR", type="flat", unit_amount=D("29.99"), tax_inclusive=True
        ),
        "eur_volume": price(
            "Volume", "EUR", type="tiered_volume", tiers=tiers, metric="events", aggregation="last"
        ),
        "jpy_flat": price("Basic", "JPY", type="flat", unit_amount=D("3980")),
        "jpy_calls": price(
            "API JPY", "JPY", unit_amount=D("0.3"), metric="calls", aggregation="sum"
        ),
    }


def make_book(catalog: dict[str, Any], clerk, tag: str) -> list[int]:
    """Subscriptions covering every case the run handles; the same content for every tag."""
    p = catalog

    def customer(n: int, currency: str, **fields: Any):
        return customer_create(
            actor=clerk,
            name=f"Customer {n}",
            email=f"c{n}@example.com",
            currency=currency,
            address_line1=f"{n} Main St",
            city="Springfield",
            **fields,
        )

    def subscribe(c, items, start=date(2026, 4, 1), **kwargs):
        return subscription_create(
            actor=None, customer_id=c.pk, items=items, start_date=start, **kwargs
        )

    def usage(sub, metric: str, rows: list[tuple[str, str, date]]) -> None:
        item = sub.items.get(price__metric=metric)
        usage_ingest(
            actor=None,
            events=[
                UsageInput(item.pk, metric, D(q), at(day), f"{tag}-{sub.pk}-{metric}-{n}", value)
                for n, (q, value, day) in enumerate(rows)
            ],
        )

    subs = []
    # Seats in California (jurisdiction rate), with every meter and late usage.
    s = subscribe(
        customer(1, "USD", tax_jurisdiction="US-CA", payment_terms=14),
        [
            ItemInput(p["seats"].pk, D(3)),
            ItemInput(p["calls"].pk),
            ItemInput(p["storage"].pk),
            ItemInput(p["users"].pk),
            ItemInput(p["devices"].pk, D(25)),
        ],
    )
    usage(s, "calls", [("1000", "", date(2026, 4, 2)), ("2500.5", "", date(2026, 4, 30))])
    usage(s, "gb", [("40", "", date(2026, 4, 3)), ("175", "", date(2026, 4, 9))])
    usage(
        s,
        "users",
        [
            ("1", "u1", date(2026, 4, 1)),
            ("1", "u2", date(2026, 4, 2)),
            ("1", "u1", date(2026, 5, 3)),
            ("1", "u3", date(2026, 5, 9)),
        ],
    )
    subs.append(s)
    # The system default rate, a plan change with pending items, two periods caught up.
    s = subscribe(customer(2, "USD"), [ItemInput(p["seats"].pk, D(1))], start=date(2026, 3, 14))
    subscription_change(
        actor=None,
        subscription_id=s.pk,
        items=[ItemInput(p["big"].pk, D(2))],
        on_date=date(2026, 3, 20),
    )
    subs.append(s)
    # Tax exempt, trial first, then billed.
    s = subscribe(customer(3, "USD", tax_exempt=True), [ItemInput(p["seats"].pk)], trial_days=10)
    subs.append(s)
    # Cancelled at the end of its period.
    s = subscribe(customer(4, "USD"), [ItemInput(p["big"].pk)], start=date(2026, 4, 10))
    subscription_cancel(actor=None, subscription_id=s.pk, at_period_end=True)
    subs.append(s)
    # EUR, reverse charge, tax-inclusive flat and a volume meter (last value).
    s = subscribe(
        customer(5, "EUR", reverse_charge=True, country="DE"),
        [ItemInput(p["eur_flat"].pk), ItemInput(p["eur_volume"].pk)],
    )
    usage(s, "events", [("50", "", date(2026, 4, 5)), ("12", "", date(2026, 4, 28))])
    subs.append(s)
    # EUR, taxed inclusive at the default rate; no usage at all on its meter.
    s = subscribe(customer(6, "EUR"), [ItemInput(p["eur_flat"].pk), ItemInput(p["eur_volume"].pk)])
    subs.append(s)
    # JPY: no minor unit; metered only, nothing used (a zero invoice, paid at once).
    s = subscribe(customer(7, "JPY"), [ItemInput(p["jpy_calls"].pk)])
    subs.append(s)
    s = subscribe(
        customer(8, "JPY", payment_terms=0),
        [ItemInput(p["jpy_flat"].pk), ItemInput(p["jpy_calls"].pk)],
        start=date(2026, 4, 15),
    )
    usage(s, "calls", [("1234", "", date(2026, 4, 20)), ("7", "", date(2026, 5, 20))])
    subs.append(s)
    return [sub.pk for sub in subs]


def content(invoice: Invoice) -> dict[str, Any]:
    """What an invoice says and posts, without its identity (number, ids, timestamps)."""
    entry = invoice.ledger_entry
    snapshot = dict(invoice.snapshot)
    snapshot.pop("number")
    return {
        "period": (invoice.period_start, invoice.period_end),
        "status": invoice.status,
        "currency": invoice.currency,
        "totals": (invoice.subtotal, invoice.tax, invoice.total),
        "dates": (invoice.issue_date, invoice.due_date),
        "fx_rate": invoice.fx_rate,
        "issued": (invoice.issued_at is not None, invoice.issued_by_id),
        "lines": [
            (
                line.position,
                line.description,
                line.quantity,
                line.unit_price,
                line.tax_rate,
                line.amount,
                line.tax_amount,
            )
            for line in invoice.lines.all()
        ],
        "snapshot": snapshot,
        "usage": sorted(
            (e.metric, e.quantity, e.value, e.occurred_at) for e in invoice.usage_events.all()
        ),
        "pending": sorted(p.description for p in invoice.pending_items.all()),
        "entry": None
        if entry is None
        else (
            entry.entry_date,
            entry.description.replace(invoice.number, "N"),
            entry.source == f"billing.invoice:{invoice.pk}",
            entry.idempotency_key == f"billing.invoice:{invoice.pk}:issue",
            sorted(
                (
                    line.account_id,
                    line.currency,
                    line.debit,
                    line.credit,
                    line.functional_debit,
                    line.functional_credit,
                )
                for line in entry.lines.all()
            ),
        ),
    }


def state(subscription_id: int) -> tuple[Any, ...]:
    s = Subscription.objects.get(pk=subscription_id)
    return (s.status, s.current_period_start, s.current_period_end, s.ended_on)


def gapless() -> bool:
    numbers = sorted(Invoice.objects.values_list("number", flat=True))
    return numbers == [f"INV-2026-{n:06d}" for n in range(1, len(numbers) + 1)]


@pytest.mark.django_db
def test_batch_and_per_period_paths_give_the_same_invoices(
    catalog, clerk, delivered, django_capture_on_commit_callbacks
) -> None:
    # given the same book of subscriptions twice
    singles = make_book(catalog, clerk, "a")
    batched = make_book(catalog, clerk, "b")
    # when one copy is billed period by period and the other by the chunked run (small
    # chunks, so periods and catch-ups cross chunk boundaries)
    for pk in singles:
        while subscription_bill_period(subscription_id=pk, as_of=AS_OF):
            pass
    with django_capture_on_commit_callbacks(execute=True):
        result = billing_run(as_of=AS_OF, chunk_size=3, batch_min=1)
    # then every subscription has the same invoices, lines, tax, postings and snapshot
    assert result.failures == {}
    for single, batch in zip(singles, batched, strict=True):
        expected = [content(i) for i in Invoice.objects.filter(subscription_id=single)]
        got = [content(i) for i in Invoice.objects.filter(subscription_id=batch)]
        assert got == expected, f"subscription {batch} differs from {single}"
        assert state(batch) == state(single)
    batch_invoices = Invoice.objects.filter(subscription_id__in=batched)
    assert sorted(result.invoices) == sorted(batch_invoices.values_list("pk", flat=True))
    assert len(result.invoices) == 10
    # numbers consecutive across both paths, the books agree, nothing left unbilled
    assert gapless()
    assert trial_balance().is_balanced
    assert ar_subledger_check() == []
    # usage after each subscription's last billed period waits for the next invoice
    assert UsageEvent.objects.filter(invoice__isnull=True).count() == 2 * 3
    assert not PendingItem.objects.filter(invoice__isnull=True).exists()
    assert set(batch_invoices.values_list("status", flat=True)) == {
        InvoiceStatus.OPEN,
        InvoiceStatus.PAID,
    }
    # one history row per invoice written in bulk, one per subscription advance
    for invoice in batch_invoices:
        assert [h.history_type for h in invoice.history.all()] == ["+"]
        assert invoice.history.get().snapshot == invoice.snapshot
    canceled = Subscription.objects.get(pk=batched[3])
    assert canceled.status == SubscriptionStatus.CANCELED
    assert canceled.history.first().status == SubscriptionStatus.CANCELED
    # each invoice's delivery queued once, after commit
    assert sorted(delivered) == sorted(str(pk) for pk in result.invoices)


@pytest.mark.django_db
def test_numbers_are_taken_as_one_consecutive_block() -> None:
    # given a number already taken this year
    with transaction.atomic():
        assert document_numbers_take(series="INV", on_date=date(2026, 1, 5), count=1) == [
            "INV-2026-000001"
        ]
    # when a block is taken, and another is rolled back
    with transaction.atomic():
        block = document_numbers_take(series="INV", on_date=date(2026, 6, 1), count=3)
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        document_numbers_take(series="INV", on_date=date(2026, 6, 1), count=5)
        _ = 1 / 0
    with transaction.atomic():
        after = document_numbers_take(series="INV", on_date=date(2026, 6, 2), count=2)
        nothing = document_numbers_take(series="INV", on_date=date(2026, 6, 2), count=0)
    # then the numbers follow on, the rolled-back block given back
    assert block == ["INV-2026-000002", "INV-2026-000003", "INV-2026-000004"]
    assert after == ["INV-2026-000005", "INV-2026-000006"]
    assert nothing == []


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_numbers_block_outside_a_transaction_is_refused() -> None:
    with pytest.raises(RuntimeError):
        document_numbers_take(series="INV", on_date=date(2026, 6, 1), count=2)


def simple_book(clerk, plan, n: int, *, currency: str = "USD", start=date(2026, 4, 1)):
    subs = []
    for i in range(n):
        c = customer_create(
            actor=clerk, name=f"C{currency}{i}", email=f"c{i}@x.example", currency=currency
        )
        subs.append(
            subscription_create(
                actor=None, customer_id=c.pk, items=[ItemInput(plan.pk)], start_date=start
            )
        )
    return [s.pk for s in subs]


@pytest.fixture
def plan(db):
    product = product_create(actor=None, name="Pro plan")
    return price_create(
        actor=None,
        product_id=product.pk,
        currency="USD",
        type="per_unit",
        interval="month",
        unit_amount=D("30.00"),
        nickname="Pro",
    )


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_crash_mid_chunk_loses_nothing_and_bills_nothing_twice(
    monkeypatch, clerk, plan, delivered
) -> None:
    # given 7 subscriptions, two of them two periods behind, billed in chunks of 3
    subs = simple_book(clerk, plan, 5) + simple_book(clerk, plan, 2, start=date(2026, 3, 1))
    # and the process dies in the second chunk, after its invoices and postings are written
    real_save = run_module._save_advanced
    calls = {"n": 0}

    def dying_save(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise SystemExit("worker killed")
        return real_save(*args, **kwargs)

    monkeypatch.setattr(run_module, "_save_advanced", dying_save)
    with pytest.raises(SystemExit):
        billing_run(as_of=date(2026, 5, 1), chunk_size=3, batch_min=1)
    # then the first chunk stands and the second left no trace
    assert Invoice.objects.count() == 3
    assert JournalEntry.objects.count() == 3
    assert sorted(delivered) == sorted(
        str(pk) for pk in Invoice.objects.values_list("pk", flat=True)
    )
    assert gapless()
    # when the run is started again
    monkeypatch.setattr(run_module, "_save_advanced", real_save)
    result = billing_run(as_of=date(2026, 5, 1), chunk_size=3, batch_min=1)
    # then every period is billed exactly once, numbers gapless, the books balanced
    assert result.failures == {}
    assert Invoice.objects.count() == 9
    assert JournalEntry.objects.count() == 9
    for pk in subs:
        periods = list(
            Invoice.objects.filter(subscription_id=pk)
            .order_by("period_start")
            .values_list("period_start", flat=True)
        )
        assert periods == (
            [date(2026, 4, 1)] if pk in subs[:5] else [date(2026, 3, 1), date(2026, 4, 1)]
        )
        assert state(pk)[1:3] == (date(2026, 5, 1), date(2026, 6, 1))
    assert gapless()
    assert len(delivered) == len(set(delivered)) == 9
    assert trial_balance().is_balanced
    assert ar_subledger_check() == []


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_concurrent_runs_bill_each_period_exactly_once(clerk, plan, delivered) -> None:
    # given 24 subscriptions, 4 of them a period behind
    subs = simple_book(clerk, plan, 20) + simple_book(clerk, plan, 4, start=date(2026, 3, 1))
    barrier = threading.Barrier(2)
    results, errors = [], []

    def run() -> None:
        barrier.wait()
        try:
            results.append(billing_run(as_of=date(2026, 5, 1), chunk_size=4, batch_min=1))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    # when two runs start at once
    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # then both finish, and together they billed every period once
    assert errors == []
    first, second = (set(r.invoices) for r in results)
    assert first.isdisjoint(second)
    assert first | second == set(Invoice.objects.values_list("pk", flat=True))
    assert all(r.failures == {} for r in results)
    assert Invoice.objects.count() == 28
    for pk in subs:
        assert state(pk)[1:3] == (date(2026, 5, 1), date(2026, 6, 1))
    assert gapless()
    assert len(delivered) == len(set(delivered)) == 28
    assert trial_balance().is_balanced
    assert ar_subledger_check() == []


@pytest.mark.django_db
def test_a_subscription_the_batch_refuses_is_reported_and_the_others_are_billed(
    clerk, plan, delivered
) -> None:
    # given a JPY subscription without any JPY rate among USD ones
    jpy = price_create(
        actor=None,
        product_id=plan.product_id,
        currency="JPY",
        type="flat",
        interval="month",
        unit_amount=D("3000"),
    )
    usd = simple_book(clerk, plan, 4)
    (yen,) = simple_book(clerk, jpy, 1, currency="JPY")
    # when the run bills them in one chunk
    result = billing_run(as_of=date(2026, 5, 1), chunk_size=10, batch_min=1)
    # then the JPY subscription is reported and left as it was; the others are billed
    assert list(result.failures) == [yen]
    assert "No JPY/USD FX rate" in result.failures[yen]
    assert state(yen)[1:3] == (date(2026, 4, 1), date(2026, 5, 1))
    assert sorted(Invoice.objects.values_list("subscription_id", flat=True)) == usd
    assert gapless()
    assert ar_subledger_check() == []


@pytest.mark.django_db
def test_a_chunk_the_ledger_refuses_falls_back_to_one_by_one(
    monkeypatch, clerk, plan, delivered
) -> None:
    # given a ledger that refuses the chunk's batch once
    subs = simple_book(clerk, plan, 5)
    real_post = run_module.journal_post_batch
    calls = {"n": 0}

    def refusing_post(**kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise DomainError("The ledger is busy.")
        return real_post(**kwargs)

    monkeypatch.setattr(run_module, "journal_post_batch", refusing_post)
    # when the run bills them
    result = billing_run(as_of=date(2026, 5, 1), chunk_size=10, batch_min=1)
    # then the chunk rolled back and each subscription was billed on its own instead
    assert result.failures == {}
    assert sorted(Invoice.objects.values_list("subscription_id", flat=True)) == subs
    assert sorted(result.invoices) == sorted(Invoice.objects.values_list("pk", flat=True))
    assert gapless()
    assert trial_balance().is_balanced
    assert ar_subledger_check() == []


@pytest.mark.django_db
def test_a_period_already_invoiced_is_not_invoiced_again(clerk, plan, delivered) -> None:
    # given a period whose invoice exists (a run that crashed after the invoice, before
    # the subscription moved on, cannot happen in one transaction; a hand-made one can)
    subs = simple_book(clerk, plan, 3)
    invoice = subscription_bill_period(subscription_id=subs[0], as_of=date(2026, 5, 1))
    Subscription.objects.filter(pk=subs[0]).update(
        current_period_start=date(2026, 4, 1), current_period_end=date(2026, 5, 1)
    )
    # when the chunked run bills the three
    result = billing_run(as_of=date(2026, 5, 1), chunk_size=10, batch_min=1)
    # then the existing invoice stands for its period and the subscription moves on
    assert Invoice.objects.filter(subscription_id=subs[0]).get() == invoice
    assert invoice.pk in result.invoices
    assert state(subs[0])[1:3] == (date(2026, 5, 1), date(2026, 6, 1))
    assert Invoice.objects.count() == 3
    assert gapless()
