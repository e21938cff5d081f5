"""The bank reconciliation report of one bank account as of a period's end.

Statement balance: the closing balance of the last statement that closes on or before the
period end, plus the bank lines dated after it up to the period end (a feed, a later partial
statement). Book balance: the bank's ledger account in the bank's currency as of the period
end. They differ by the reconciling items:

- bank items not in the books: lines up to the period end that no applied match explains
  by a book entry dated up to the period end (unmatched, suggested or excluded lines, and
  lines matched to an entry dated later);
- book items not in the bank: what is left of each entry on the ledger account up to the
  period end once the matched lines (dated up to the period end) that it explains are taken
  off: payments recorded but not yet cleared, a payment run paid in parts... An entry and
  its reversal both outstanding cancel out and are left out. Entries dated before the
  account's first imported statement (or line) are in the opening balance that statement
  starts from, and are not listed: if the books disagree with it, the difference shows as
  unexplained.

``unexplained`` = statement - book - (bank items - book items): zero when every difference
is listed. A period can be signed off only then.

Which entries a match explains: the payment it recorded or linked (billing's entry), the
rule entries it posted, the payment run's payment entry, the payout's settlement entry.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from django.db.models import Q, Sum

from billing.models import Payment
from core.exceptions import NotFound
from core.ledger.models import JournalEntry, JournalLine
from core.ledger.selectors import account_balances
from core.money import round_money
from reconciliation.enums import (
    ExceptionStatus,
    MatchStatus,
    MatchTargetKind,
    SignOffStatus,
    StatementLineStatus,
)
from reconciliation.exceptions import ReconciliationError
from reconciliation.models import (
    BankAccount,
    Match,
    MatchLine,
    MatchTarget,
    Payout,
    ReconciliationException,
    SignOff,
    Statement,
    StatementLine,
)

ZERO = Decimal(0)
# Items listed one by one in the report; the rest are counted and summed.
MAX_LISTED = 500


def _fmt(amount: Decimal, currency: str) -> str:
    """In the currency's minor unit when that is exact (the storage keeps 4 places)."""
    rounded = round_money(amount, currency)
    return str(rounded if rounded == amount else amount)


@dataclass(frozen=True)
class BankItem:
    line_id: int
    booking_date: date
    amount: Decimal
    description: str
    status: str
    why: str

    def as_dict(self, currency: str) -> dict[str, Any]:
        return {
            "line": self.line_id,
            "booking_date": self.booking_date.isoformat(),
            "amount": _fmt(self.amount, currency),
            "description": self.description,
            "status": self.status,
            "why": self.why,
        }


@dataclass(frozen=True)
class BookItem:
    entry_id: int
    entry_date: date
    amount: Decimal
    description: str
    why: str

    def as_dict(self, currency: str) -> dict[str, Any]:
        return {
            "entry": self.entry_id,
            "entry_date": self.entry_date.isoformat(),
            "amount": _fmt(self.amount, currency),
            "description": self.description,
            "why": self.why,
        }


@dataclass
class ReconciliationReport:
    bank_account_id: int
    bank_account: str
    currency: str
    ledger_account: str
    period_start: date
    period_end: date
    statement_id: int | None
    statement_closing_date: date | None
    statement_closing_balance: Decimal
    lines_after_statement: Decimal
    statement_balance: Decimal
    book_balance: Decimal
    bank_items: list[BankItem] = field(default_factory=list)
    book_items: list[BookItem] = field(default_factory=list)
    line_counts: dict[str, int] = field(default_factory=dict)
    open_exceptions: int = 0
    suggestions_pending: int = 0
    signed_off: dict[str, Any] | None = None

    @property
    def bank_items_total(self) -> Decimal:
        return sum((x.amount for x in self.bank_items), ZERO)

    @property
    def book_items_total(self) -> Decimal:
        return sum((x.amount for x in self.book_items), ZERO)

    @property
    def adjusted_book_balance(self) -> Decimal:
        """The book balance with the bank items added and the book items taken off: what
        the statement should say."""
        return self.book_balance + self.bank_items_total - self.book_items_total

    @property
    def unexplained(self) -> Decimal:
        return self.statement_balance - self.adjusted_book_balance

    def as_dict(self, *, listed: int = MAX_LISTED) -> dict[str, Any]:
        c = self.currency
        return {
            "bank_account": self.bank_account_id,
            "bank_account_name": self.bank_account,
            "currency": self.currency,
            "ledger_account": self.ledger_account,
            "period_start": self.period_start.isoformat(),
            "period_end": self.period_end.isoformat(),
            "statement": self.statement_id,
            "statement_closing_date": (
                self.statement_closing_date.isoformat() if self.statement_closing_date else None
            ),
            "statement_closing_balance": _fmt(self.statement_closing_balance, c),
            "lines_after_statement": _fmt(self.lines_after_statement, c),
            "statement_balance": _fmt(self.statement_balance, c),
            "book_balance": _fmt(self.book_balance, c),
            "bank_items_total": _fmt(self.bank_items_total, c),
            "book_items_total": _fmt(self.book_items_total, c),
            "adjusted_book_balance": _fmt(self.adjusted_book_balance, c),
            "unexplained": _fmt(self.unexplained, c),
            "bank_items_count": len(self.bank_items),
            "book_items_count": len(self.book_items),
            "bank_items": [x.as_dict(c) for x in self.bank_items[:listed]],
            "book_items": [x.as_dict(c) for x in self.book_items[:listed]],
            "line_counts": self.line_counts,
            "open_exceptions": self.open_exceptions,
            "suggestions_pending": self.suggestions_pending,
            "signed_off": self.signed_off,
        }


def _statement_balance(
    account: BankAccount, period_end: date
) -> tuple[Statement, Decimal, Decimal]:
    statement = (
        Statement.objects.filter(
            bank_account=account, closing_balance__isnull=False, closing_date__lte=period_end
        )
        .order_by("-closing_date", "-pk")
        .first()
    )
    if statement is None or statement.closing_balance is None or statement.closing_date is None:
        raise ReconciliationError(
            f"No statement of {account} closes with a balance on or before "
            f"{period_end.isoformat()}; import one first.",
            code="no_statement_balance",
        )
    after = (
        StatementLine.objects.filter(
            bank_account=account,
            booking_date__gt=statement.closing_date,
            booking_date__lte=period_end,
        ).aggregate(s=Sum("amount"))["s"]
        or ZERO
    )
    return statement, statement.closing_balance, after


def _entries_of_matches(matches: list[Match]) -> dict[int, list[int]]:
    """For each match, the ledger entries it explains."""
    ids = [m.pk for m in matches]
    out: dict[int, set[int]] = defaultdict(set)
    through = Match.journal_entries.through
    for match_id, entry_id in through.objects.filter(match_id__in=ids).values_list(
        "match_id", "journalentry_id"
    ):
        out[match_id].add(entry_id)
    payment_of = {m.pk: m.payment_id for m in matches if m.payment_id}
    targets = list(
        MatchTarget.objects.filter(match_id__in=ids).values_list(
            "match_id", "kind", "payment_id", "payment_run_id", "payment_run_item__run_id",
            "payout_id",
        )
    )  # fmt: skip
    payment_ids = set(payment_of.values()) | {t[2] for t in targets if t[2]}
    payment_entries = dict(
        Payment.objects.filter(pk__in=payment_ids, ledger_entry__isnull=False).values_list(
            "pk", "ledger_entry_id"
        )
    )
    run_ids = {t[3] or t[4] for t in targets if t[3] or t[4]}
    run_entries = {
        int(key.split(":")[1]): pk
        for pk, key in JournalEntry.objects.filter(
            idempotency_key__in=[f"payables.payment_run:{r}:paid" for r in run_ids]
        ).values_list("pk", "idempotency_key")
        if key is not None  # always: the filter is on the key
    }
    payout_entries = dict(
        Payout.objects.filter(
            pk__in={t[5] for t in targets if t[5]}, journal_entry__isnull=False
        ).values_list("pk", "journal_entry_id")
    )
    for match_id, payment_id in payment_of.items():
        if payment_id in payment_entries:
            out[match_id].add(payment_entries[payment_id])
    for match_id, kind, payment_id, run_id, item_run_id, payout_id in targets:
        if kind == MatchTargetKind.PAYMENT and payment_id in payment_entries:
            out[match_id].add(payment_entries[payment_id])
        elif kind in (MatchTargetKind.PAYMENT_RUN, MatchTargetKind.PAYMENT_RUN_ITEM):
            entry = run_entries.get(run_id or item_run_id)
            if entry:
                out[match_id].add(entry)
        elif kind == MatchTargetKind.PAYOUT and payout_id in payout_entries:
            out[match_id].add(payout_entries[payout_id])
    return {k: sorted(v) for k, v in out.items()}


def reconciliation_report(
    *, bank_account_id: int, period_start: date, period_end: date
) -> ReconciliationReport:
    if period_start > period_end:
        raise ReconciliationError(
            "period_start is after period_end.", code="invalid_period", field="period_start"
        )
    account = (
        BankAccount.objects.select_related("ledger_account").filter(pk=bank_account_id).first()
    )
    if account is None:
        raise NotFound(f"No bank account {bank_account_id}.")
    currency = account.currency
    statement, closing, after = _statement_balance(account, period_end)
    balances = account_balances(account=account.ledger_account_id, as_of=period_end)
    book_balance = balances[currency].balance if currency in balances else ZERO

    # Where the bank's lines start: earlier book entries are in the opening balance.
    first_line = (
        StatementLine.objects.filter(bank_account=account)
        .order_by("booking_date")
        .values_list("booking_date", flat=True)
        .first()
    )
    first_opening = (
        Statement.objects.filter(bank_account=account, opening_date__isnull=False)
        .order_by("opening_date")
        .values_list("opening_date", flat=True)
        .first()
    )
    baseline = min(d for d in (first_line, first_opening, statement.closing_date) if d)
    # The cash account's movements up to the period end, per entry, signed (debit positive).
    entry_amounts: dict[int, Decimal] = {}
    entry_info: dict[int, tuple[date, str, int | None]] = {}
    for entry_id, amount, entry_date, description, reversal_of in (
        JournalLine.objects.filter(
            account_id=account.ledger_account_id,
            currency=currency,
            entry__entry_date__gte=baseline,
            entry__entry_date__lte=period_end,
        )
        .values("entry_id")
        .annotate(s=Sum("debit") - Sum("credit"))
        .values_list(
            "entry_id", "s", "entry__entry_date", "entry__description", "entry__reversal_of_id"
        )
        .order_by("entry_id")
    ):
        entry_amounts[entry_id] = entry_amounts.get(entry_id, ZERO) + amount
        entry_info[entry_id] = (entry_date, description, reversal_of)

    # Applied matches with their lines up to the period end.
    lines = list(
        StatementLine.objects.filter(bank_account=account, booking_date__lte=period_end)
        .order_by("booking_date", "pk")
        .values_list("pk", "booking_date", "amount", "description", "status")
    )
    line_match: dict[int, int] = dict(
        MatchLine.objects.filter(
            is_live=True,
            match__bank_account=account,
            match__status=MatchStatus.APPLIED,
            line__booking_date__lte=period_end,
        ).values_list("line_id", "match_id")
    )
    matches = list(Match.objects.filter(pk__in=set(line_match.values())))
    entries_of = _entries_of_matches(matches)
    match_line_total: dict[int, Decimal] = defaultdict(Decimal)
    amounts = {pk: amount for pk, _, amount, _, _ in lines}
    for line_id, match_id in line_match.items():
        match_line_total[match_id] += amounts.get(line_id, ZERO)

    # Take each match's lines off the entries it explains (in entry order, each up to what
    # it holds on the cash account); a match whose entries are all after the period end
    # leaves its lines as bank items.
    cleared: dict[int, Decimal] = defaultdict(Decimal)
    explained_matches: set[int] = set()
    for match_id, total in match_line_total.items():
        in_period = [e for e in entries_of.get(match_id, []) if e in entry_amounts]
        if not in_period:
            continue
        explained_matches.add(match_id)
        left = total
        for n, entry_id in enumerate(in_period):
            room = entry_amounts[entry_id] - cleared[entry_id]
            last = n == len(in_period) - 1
            part = left if last else (min(left, room) if left >= 0 else max(left, room))
            cleared[entry_id] += part
            left -= part

    counts: dict[str, int] = defaultdict(int)
    bank_items: list[BankItem] = []
    why_open: dict[str, str] = {
        StatementLineStatus.UNMATCHED: "not matched",
        StatementLineStatus.SUGGESTED: "suggestion waiting for a decision",
        StatementLineStatus.EXCLUDED: "excluded from matching",
    }
    for pk, booking_date, amount, description, status in lines:
        if booking_date >= period_start:
            counts[status] += 1
        line_match_id = line_match.get(pk)
        if line_match_id is not None and line_match_id in explained_matches:
            continue
        why = why_open.get(status, "matched to an entry dated after the period end")
        bank_items.append(BankItem(pk, booking_date, amount, description[:200], status, why))

    outstanding = {
        e: entry_amounts[e] - cleared.get(e, ZERO)
        for e in entry_amounts
        if entry_amounts[e] - cleared.get(e, ZERO) != 0
    }
    # An entry and its reversal both outstanding cancel out.
    for entry_id in list(outstanding):
        original = entry_info[entry_id][2]
        if (
            original in outstanding
            and entry_id in outstanding
            and outstanding[original] + outstanding[entry_id] == 0
        ):
            del outstanding[original], outstanding[entry_id]
    book_items = [
        BookItem(
            e,
            entry_info[e][0],
            amount,
            entry_info[e][1][:200],
            "partly cleared" if cleared.get(e) else "not cleared by the bank",
        )
        for e, amount in sorted(outstanding.items(), key=lambda kv: (entry_info[kv[0]][0], kv[0]))
    ]

    in_period_q = Q(line__booking_date__lte=period_end) | Q(line__isnull=True)
    last_sign_off = (
        SignOff.objects.filter(bank_account=account, status=SignOffStatus.SIGNED)
        .order_by("-period_end", "-pk")
        .first()
    )
    return ReconciliationReport(
        bank_account_id=account.pk,
        bank_account=str(account),
        currency=currency,
        ledger_account=str(account.ledger_account),
        period_start=period_start,
        period_end=period_end,
        statement_id=statement.pk,
        statement_closing_date=statement.closing_date,
        statement_closing_balance=closing,
        lines_after_statement=after,
        statement_balance=closing + after,
        book_balance=book_balance,
        bank_items=bank_items,
        book_items=book_items,
        line_counts=dict(counts),
        open_exceptions=ReconciliationException.objects.filter(
            in_period_q, bank_account=account, status=ExceptionStatus.OPEN
        ).count(),
        suggestions_pending=Match.objects.filter(
            bank_account=account,
            status=MatchStatus.PROPOSED,
            lines__line__booking_date__lte=period_end,
        )
        .distinct()
        .count(),
        signed_off=(
            {
                "id": last_sign_off.pk,
                "period_end": last_sign_off.period_end.isoformat(),
                "signed_by": getattr(last_sign_off.signed_by, "username", None),
                "signed_at": last_sign_off.signed_at.isoformat(),
            }
            if last_sign_off
            else None
        ),
    )
