"""The matching engine over 100,000 bank lines and 100,000 open invoices, beside a naive
nested loop.

    .venv/bin/python bench/matching.py [--quick] [--keep] [--lines N] [--write N]

A generated data set with known truth (``synthetic``, seeded, deterministic): of the lines
that pay an invoice, 70% carry the invoice number in the remittance text, 20% only the exact
amount, a date within the window and the customer's name (case, punctuation and legal form
varied), 10% the exact amount and the name with a typo; plus 5% noise lines (unknown senders,
half of them with an amount some invoice also has) that must not match. Rows, in one run:

- engine: ``reconciliation.matching.match_lines`` over the whole set (pure Python, no
  database): seconds, lines per second, precision of the automatic matches (confidence at or
  above 0.95), recall of the automatic matches and of all proposals;
- naive: each line compared with every open item (reference in the text, else amount and
  name), on a subset of lines (--baseline, default 300) and extrapolated linearly;
- write: in its own database (``<name of DATABASE_URL>_bench``, migrated, seeded in bulk,
  dropped at the end unless --keep), ``reconcile()`` over --write lines (default 20,000):
  proposals stored and every automatic match applied in chunks (payments through
  ``payments_record_batch``, entries through ``journal_post_batch``), seconds and lines per
  second (the whole run, and the applying alone), extrapolated to the full set; then the
  same over --write-old lines of a second data set (default 1,000) applied one by one
  through ``match_apply`` as before, and the ratio of the two.

Goal (issue #7): the engine over the full set under 10 s.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from reconciliation import matching  # noqa: E402 (pure: no Django needed)

GOAL_SECONDS = 10.0
START = date(2026, 1, 1)
SYLLABLES = (
    *("ka", "ro", "mi", "ten", "vo", "la", "su", "pe", "dri", "nor", "vex", "bal", "tor"),
    *("quin", "sel", "mar", "fen", "gol", "hast", "ber", "lin", "dor", "cal", "mun", "tis"),
    *("zan", "wel", "ock", "rim", "sta", "ful", "gra", "ven", "hol"),
)
LEGAL = ("", " Inc", " GmbH", " Ltd", " LLC", ", Inc.", " S.A.")
THRESHOLD = Decimal("0.95")


@dataclass(frozen=True, slots=True)
class Synthetic:
    lines: list[matching.BankLine]
    invoices: list[matching.OpenInvoice]
    # line id -> invoice id it pays (None: noise, must stay unmatched)
    truth: dict[int, int | None]
    kind: dict[int, str]


def _word(rng: random.Random, parts: int) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(parts)).capitalize()


def _typo(rng: random.Random, name: str) -> str:
    """One letter changed, dropped or doubled in the longest word, upper-cased like banks do."""
    words = name.split()
    k = max(range(len(words)), key=lambda i: len(words[i]))
    w = words[k]
    pos = rng.randrange(1, len(w) - 1)
    op = rng.randrange(3)
    if op == 0:
        w = w[:pos] + w[pos + 1 :]
    elif op == 1:
        w = w[:pos] + w[pos] + w[pos:]
    else:
        w = w[:pos] + ("x" if w[pos] != "x" else "y") + w[pos + 1 :]
    words[k] = w
    return " ".join(words).upper()


def synthetic(
    n_lines: int, *, seed: int = 7, currency: str = "USD", prefix: str = "INV"
) -> Synthetic:
    """n_lines bank lines (95% paying one invoice each, 5% noise) and as many open
    invoices (5% of them unpaid)."""
    rng = random.Random(seed)
    n_customers = max(20, n_lines // 20)
    names: list[str] = []
    seen: set[str] = set()
    while len(names) < n_customers:
        name = f"{_word(rng, 3)} {_word(rng, 2)}"
        if matching.normalize_name(name) not in seen:
            seen.add(matching.normalize_name(name))
            names.append(name)
    invoices: list[matching.OpenInvoice] = []
    amounts: set[Decimal] = set()
    for i in range(n_lines):
        cid = rng.randrange(n_customers)
        while True:
            amount = Decimal(rng.randrange(1_000, 10_000_000)) / 100
            if amount not in amounts:
                amounts.add(amount)
                break
        invoices.append(
            matching.OpenInvoice(
                id=i + 1,
                number=f"{prefix}-2026-{i + 1:06d}",
                customer_id=cid + 1,
                customer_name=names[cid],
                currency=currency,
                amount_due=amount,
                due_date=START + timedelta(days=rng.randrange(0, 330)),
            )
        )
    paying = int(n_lines * 0.95)
    order = list(range(n_lines))
    rng.shuffle(order)
    lines: list[matching.BankLine] = []
    truth: dict[int, int | None] = {}
    kind: dict[int, str] = {}
    for k in range(n_lines):
        line_id = k + 1
        if k < paying:
            inv = invoices[order[k]]
            share = k / paying
            name = inv.customer_name
            booking = inv.due_date + timedelta(days=rng.randrange(-4, 5))
            if share < 0.70:
                text = f"PAYMENT {inv.number} THANK YOU"
                cp, what = name.upper() + rng.choice(LEGAL).upper(), "reference"
                booking = inv.due_date + timedelta(days=rng.randrange(-20, 40))
            elif share < 0.90:
                text = rng.choice(("TRANSFER", "INVOICE PAYMENT", "SEPA CREDIT", "REMITTANCE"))
                cp, what = name.upper() + rng.choice(LEGAL).upper(), "counterparty"
            else:
                text = rng.choice(("TRANSFER", "PAYMENT", "WIRE"))
                cp, what = _typo(rng, name), "fuzzy"
            lines.append(
                matching.BankLine(
                    line_id,
                    inv.amount_due,
                    currency,
                    booking,
                    description=text,
                    counterparty_name=cp,
                    bank_reference=f"BR{line_id:08d}",
                )
            )
            truth[line_id], kind[line_id] = inv.id, what
        else:
            # Noise: unknown senders; half of them with an amount an invoice also has.
            if k % 2:
                amount = invoices[rng.randrange(n_lines)].amount_due
            else:
                amount = Decimal(rng.randrange(100, 500_000)) / 100
            lines.append(
                matching.BankLine(
                    line_id,
                    amount if k % 3 else -amount,
                    currency,
                    START + timedelta(days=rng.randrange(0, 330)),
                    description=rng.choice(("CARD SETTLEMENT", "TRANSFER", "REFUND 4471")),
                    counterparty_name=f"ZZ {_word(rng, 4)} TRADING",
                    bank_reference=f"BR{line_id:08d}",
                )
            )
            truth[line_id], kind[line_id] = None, "noise"
    return Synthetic(lines, invoices, truth, kind)


@dataclass(frozen=True, slots=True)
class Quality:
    auto: int
    auto_correct: int
    proposed: int
    proposed_correct: int
    true_lines: int

    @property
    def precision(self) -> float:
        return self.auto_correct / self.auto if self.auto else 1.0

    @property
    def recall(self) -> float:
        return self.auto_correct / self.true_lines if self.true_lines else 1.0

    @property
    def recall_proposed(self) -> float:
        return self.proposed_correct / self.true_lines if self.true_lines else 1.0


def quality(data: Synthetic, proposals: list[matching.Proposal]) -> Quality:
    """Automatic matches are correct when every target is the line's true invoice."""
    auto = auto_correct = correct = 0
    for p in proposals:
        (line_id,) = p.line_ids
        right = data.truth[line_id] is not None and all(
            t.kind == "invoice" and t.id == data.truth[line_id] for t in p.targets
        )
        correct += right
        if p.confidence >= THRESHOLD:
            auto += 1
            auto_correct += right
    true_lines = sum(1 for v in data.truth.values() if v is not None)
    return Quality(auto, auto_correct, len(proposals), correct, true_lines)


def naive(lines: list[matching.BankLine], invoices: list[matching.OpenInvoice]) -> int:
    """Every line against every open item: the number in the text, else amount and name."""
    found = 0
    for line in lines:
        text = line.description.upper()
        name = matching.normalize_name(line.counterparty_name)
        for inv in invoices:
            if inv.number in text or (
                inv.amount_due == line.amount and matching.normalize_name(inv.customer_name) == name
            ):
                found += 1
                break
    return found


def run_engine(n: int, baseline: int) -> tuple[Synthetic, float]:
    data = synthetic(n)
    started = time.perf_counter()
    proposals = matching.match_lines(data.lines, invoices=data.invoices)
    seconds = time.perf_counter() - started
    q = quality(data, proposals)
    rate = n / seconds
    print(
        f"data: {n:,} lines ({q.true_lines:,} paying one invoice), "
        f"{len(data.invoices):,} open invoices"
    )
    print(
        f"engine: {seconds:6.2f} s for the full set   {rate:10,.0f} lines/s   "
        f"{q.auto_correct / seconds:10,.0f} correct auto matches/s   "
        f"goal < {GOAL_SECONDS:.0f} s: {'met' if seconds < GOAL_SECONDS else 'MISSED'}"
    )
    print(
        f"quality: auto {q.auto:,} precision {q.precision:.4%} recall {q.recall:.2%}; "
        f"all proposals {q.proposed:,} recall {q.recall_proposed:.2%}"
    )
    by_kind: dict[str, list[int]] = {}
    auto_ids = {
        p.line_ids[0]
        for p in matching.match_lines(data.lines, invoices=data.invoices)
        if p.confidence >= THRESHOLD
    }
    for line_id, what in data.kind.items():
        by_kind.setdefault(what, [0, 0])
        by_kind[what][0] += 1
        by_kind[what][1] += line_id in auto_ids
    print(
        "auto-matched by kind: "
        + ", ".join(f"{k} {a:,}/{t:,}" for k, (t, a) in sorted(by_kind.items()))
    )
    subset = data.lines[:baseline]
    started = time.perf_counter()
    naive(subset, data.invoices)
    naive_seconds = (time.perf_counter() - started) / len(subset) * n
    print(
        f"naive: {naive_seconds:8.0f} s extrapolated from {len(subset):,} lines "
        f"({naive_seconds / seconds:,.0f}x the engine)"
    )
    assert q.precision >= 0.995, f"precision {q.precision:.4%} below 99.5%"
    return data, seconds


def run_write(n_write: int, n_old: int, n_full: int, keep: bool) -> None:
    """Seed a fresh database with n_write lines and their invoices, time reconcile(); then
    the same one by one over n_old lines of another data set."""
    from bench.ledger_post import DEFAULT_URL, bench_url, recreate_database

    url, name, maintenance = bench_url(os.environ.get("DATABASE_URL", DEFAULT_URL))
    recreate_database(maintenance, name)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    django.setup()
    from django.core.management import call_command

    try:
        call_command("migrate", verbosity=0)
        new = _write(n_write, n_full, seed=11, prefix="INV", one_by_one=False)
        if n_old:
            old = _write(n_old, n_full, seed=13, prefix="OLD", one_by_one=True)
            print(
                f"write: chunks {new.rate:,.0f} lines/s against one by one {old.rate:,.0f} "
                f"lines/s: {new.rate / old.rate:,.1f}x (applying alone: "
                f"{new.apply_rate:,.0f} against {old.apply_rate:,.0f} matches/s, "
                f"{new.apply_rate / old.apply_rate:,.1f}x)"
            )
    finally:
        from django.db import connections

        connections.close_all()
        if not keep:
            recreate_database(maintenance, name, drop_only=True)


@dataclass(frozen=True, slots=True)
class WriteFigures:
    rate: float  # lines per second, the whole reconcile()
    apply_rate: float  # automatic matches applied per second, the applying alone


def _write(n: int, n_full: int, *, seed: int, prefix: str, one_by_one: bool) -> WriteFigures:
    from django.db import connection
    from djmoney.money import Money

    from billing.enums import InvoiceStatus
    from billing.models import Customer, Invoice
    from core.ledger.enums import AccountRole
    from core.ledger.models import Account
    from reconciliation import services_matching
    from reconciliation.models import BankAccount, Statement, StatementLine

    data = synthetic(n, seed=seed, prefix=prefix)
    customers = {
        cid: Customer.objects.create(name=nm, email=f"c{cid}@x.example", currency="USD")
        for cid, nm in sorted({(i.customer_id, i.customer_name) for i in data.invoices})
    }
    Invoice.objects.bulk_create(
        [
            Invoice(
                customer=customers[i.customer_id],
                number=i.number,
                status=InvoiceStatus.OPEN,
                currency="USD",
                total=Money(i.amount_due, "USD"),
                subtotal=Money(i.amount_due, "USD"),
                issue_date=i.due_date - timedelta(days=30),
                due_date=i.due_date,
                fx_rate=Decimal(1),
            )
            for i in data.invoices
        ],
        batch_size=2000,
    )
    account = BankAccount.objects.create(
        name=f"Bench {prefix}",
        currency="USD",
        ledger_account=Account.objects.get(role=AccountRole.CASH),
    )
    statement = Statement.objects.create(
        bank_account=account, format="csv", currency="USD", control="none",
        file_sha256="0" * 64, fingerprint=f"{prefix:0>64}",
    )  # fmt: skip
    StatementLine.objects.bulk_create(
        [
            StatementLine(
                statement=statement,
                bank_account=account,
                position=line.id,
                booking_date=line.booking_date,
                amount=line.amount,
                currency="USD",
                description=line.description,
                counterparty_name=line.counterparty_name,
                bank_reference=line.bank_reference,
                fingerprint=f"{line.id:064d}",
            )
            for line in data.lines
        ],
        batch_size=2000,
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    # The time spent applying, around the function reconcile() applies each chunk with.
    applying = [0.0]
    apply_chunk = services_matching._apply_automatic
    real_chunk = services_matching._apply_chunk

    def timed(match_ids: list[int]) -> tuple[int, int]:
        began = time.perf_counter()
        try:
            return apply_chunk(match_ids)
        finally:
            applying[0] += time.perf_counter() - began

    services_matching._apply_automatic = timed  # type: ignore[assignment]
    if one_by_one:
        # As before: every automatic match through match_apply.
        services_matching._apply_chunk = lambda ids: (0, 0, list(ids))  # type: ignore[assignment]
    try:
        started = time.perf_counter()
        result = services_matching.reconcile(bank_account_id=account.pk)
        seconds = time.perf_counter() - started
    finally:
        services_matching._apply_automatic = apply_chunk  # type: ignore[assignment]
        services_matching._apply_chunk = real_chunk  # type: ignore[assignment]
    how = "one by one (match_apply)" if one_by_one else "in chunks"
    apply_rate = result.auto_matched / applying[0] if applying[0] else 0.0
    print(
        f"write: reconcile() over {n:,} lines, applied {how}: {seconds:6.2f} s "
        f"({n / seconds:,.0f} lines/s; applying {applying[0]:.2f} s, {apply_rate:,.0f} "
        f"matches/s): {result.auto_matched:,} applied (a payment each), "
        f"{result.suggested:,} suggested, {result.unmatched:,} unmatched, "
        f"{result.failed_to_apply:,} refused; about {seconds / n * n_full:,.0f} s for "
        f"{n_full:,} lines"
    )
    return WriteFigures(n / seconds, apply_rate)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--baseline", type=int, default=300)
    parser.add_argument("--write", type=int, default=20_000)
    parser.add_argument(
        "--write-old", type=int, default=1_000, help="lines applied one by one, as before"
    )
    parser.add_argument(
        "--quick", action="store_true", help="10,000 lines, 2,000 written, 200 one by one"
    )
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    args = parser.parse_args()
    if args.quick:
        args.lines, args.write, args.write_old, args.baseline = 10_000, 2_000, 200, 100
    run_engine(args.lines, args.baseline)
    if args.write:
        run_write(args.write, args.write_old, args.lines, args.keep)


if __name__ == "__main__":
    main()
