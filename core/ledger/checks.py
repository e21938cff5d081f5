"""The nightly ledger check (RELIABILITY.md F8).

Verifies what the application's guards promise, so an entry written around them (raw SQL,
triggers disabled, a restored backup) is reported: every entry balances per currency and in
the functional currency with at least two lines, its content matches the digest the posting
service wrote, the trial balance is zero per currency, and the daily totals that balances
are read from equal the lines. Domain apps register their own
checks (sub-ledger equals control account) with ``register_check``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, F, Q
from django.utils import timezone

from core.ledger.digest import entry_digest_valid
from core.ledger.models import AccountDayTotal, JournalEntry, JournalLine, LedgerCheckRun
from core.ledger.selectors import rounded_sum


@dataclass(frozen=True, slots=True)
class Problem:
    check: str
    message: str
    entry_id: int | None = None

    def as_dict(self) -> dict[str, object]:
        return {"check": self.check, "message": self.message, "entry": self.entry_id}


Check = Callable[[], list[Problem]]
_EXTRA_CHECKS: dict[str, Check] = {}


def register_check(name: str, check: Check) -> None:
    """Add a check (e.g. "AR open items equal the AR account") to every ledger_check run."""
    _EXTRA_CHECKS[name] = check


def _unbalanced_entries() -> list[Problem]:
    problems = []
    per_currency = (
        JournalLine.objects.values("entry_id", "currency")
        .annotate(d=rounded_sum("debit"), c=rounded_sum("credit"))
        .filter(~Q(d=F("c")))
        .order_by("entry_id")
    )
    for row in per_currency:
        problems.append(
            Problem(
                "entry_balance",
                f"JE-{row['entry_id']} does not balance in {row['currency']}: "
                f"debits {row['d']} credits {row['c']}",
                row["entry_id"],
            )
        )
    functional = (
        JournalLine.objects.values("entry_id")
        .annotate(d=rounded_sum("functional_debit"), c=rounded_sum("functional_credit"))
        .filter(~Q(d=F("c")))
        .order_by("entry_id")
    )
    for row in functional:
        problems.append(
            Problem(
                "entry_balance",
                f"JE-{row['entry_id']} does not balance in the functional currency: "
                f"debits {row['d']} credits {row['c']}",
                row["entry_id"],
            )
        )
    short = JournalEntry.objects.annotate(n=Count("lines")).filter(n__lt=2).values_list("pk", "n")
    for pk, n in short:
        problems.append(Problem("entry_lines", f"JE-{pk} has {n} line(s)", pk))
    return problems


def _digests(entries_checked: list[int]) -> list[Problem]:
    problems = []
    lines: dict[int, list[tuple[int, str, Decimal, Decimal, Decimal, Decimal]]]
    entries = JournalEntry.objects.order_by("pk").values_list(
        "pk",
        "entry_date",
        "functional_currency",
        "source",
        "idempotency_key",
        "reversal_of_id",
        "digest",
    )
    last_pk = 0
    while True:
        chunk = list(entries.filter(pk__gt=last_pk)[:5000])
        if not chunk:
            break
        last_pk = chunk[-1][0]
        lines = {}
        for row in (
            JournalLine.objects.filter(entry_id__in=[c[0] for c in chunk])
            .order_by("entry_id", "pk")
            .values_list(
                "entry_id",
                "account_id",
                "currency",
                "debit",
                "credit",
                "functional_debit",
                "functional_credit",
            )
        ):
            lines.setdefault(row[0], []).append(row[1:])
        for pk, entry_date, functional, source, key, reversal_of_id, digest in chunk:
            entries_checked.append(pk)
            valid = bool(digest) and entry_digest_valid(
                digest,
                entry_date=entry_date,
                functional_currency=functional,
                source=source,
                idempotency_key=key,
                reversal_of_id=reversal_of_id,
                lines=lines.get(pk, []),
            )
            if not valid:
                problems.append(
                    Problem(
                        "entry_digest",
                        f"JE-{pk} was not written by the posting service, or was altered after "
                        "posting (its content does not match its digest)",
                        pk,
                    )
                )
    return problems


def _trial_balance() -> list[Problem]:
    problems = []
    for row in (
        JournalLine.objects.values("currency")
        .annotate(d=rounded_sum("debit"), c=rounded_sum("credit"))
        .order_by("currency")
    ):
        if row["d"] != row["c"]:
            problems.append(
                Problem(
                    "trial_balance",
                    f"Trial balance in {row['currency']} is off: debits {row['d']} "
                    f"credits {row['c']}",
                )
            )
    totals = JournalLine.objects.aggregate(
        d=rounded_sum("functional_debit"), c=rounded_sum("functional_credit")
    )
    if (totals["d"] or 0) != (totals["c"] or 0):
        problems.append(
            Problem(
                "trial_balance",
                f"Trial balance in the functional currency is off: debits {totals['d']} "
                f"credits {totals['c']}",
            )
        )
    return problems


def _day_totals() -> list[Problem]:
    """The daily totals behind every balance equal the lines they sum, day by day."""
    names = ("debit", "credit", "functional_debit", "functional_credit")
    from_lines = {
        (r["account_id"], r["currency"], r["entry__entry_date"]): tuple(r[n] for n in names)
        for r in JournalLine.objects.values("account_id", "currency", "entry__entry_date")
        .annotate(**{n: rounded_sum(n) for n in names})
        .order_by()
    }
    from_totals = {
        (r["account_id"], r["currency"], r["day"]): tuple(r[n] for n in names)
        for r in AccountDayTotal.objects.values("account_id", "currency", "day")
        .annotate(**{n: rounded_sum(n) for n in names})
        .order_by()
    }
    zero = (Decimal(0),) * len(names)
    problems = []
    for key in sorted(from_lines.keys() | from_totals.keys()):
        lines, totals = from_lines.get(key, zero), from_totals.get(key, zero)
        if lines != totals:
            account_id, currency, day = key
            problems.append(
                Problem(
                    "day_totals",
                    f"Daily total of account {account_id} in {currency} on {day} is "
                    f"Dr {totals[0]} Cr {totals[1]}; its lines say Dr {lines[0]} Cr {lines[1]} "
                    "(run day_totals_rebuild after finding why)",
                )
            )
    return problems


def ledger_check_run() -> LedgerCheckRun:
    """Run every check and record the run with its problems."""
    run = LedgerCheckRun.objects.create()
    checked: list[int] = []
    problems = [
        *_unbalanced_entries(),
        *_digests(checked),
        *_trial_balance(),
        *_day_totals(),
    ]
    for name, check in sorted(_EXTRA_CHECKS.items()):
        try:
            problems.extend(check())
        except Exception as exc:  # a broken check is itself a problem to report
            problems.append(Problem(name, f"check failed: {exc.__class__.__name__}: {exc}"))
    run.problems = [p.as_dict() for p in problems]
    run.ok = not problems
    run.entries_checked = len(checked)
    run.finished_at = timezone.now()
    run.save(update_fields=["problems", "ok", "entries_checked", "finished_at"])
    return run
