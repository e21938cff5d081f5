"""Ledger reads: accounts by role, the lock date, balances and the trial balance."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.db.models import Q, QuerySet, Sum

from core.ledger.enums import AccountRole
from core.ledger.models import Account, JournalEntry, JournalLine, PeriodLock

ZERO = Decimal(0)


def account_get_by_role(role: AccountRole | str) -> Account:
    return Account.objects.get(role=role)


def period_lock_date() -> date | None:
    """The last closed day of the whole books, or None when no period is closed."""
    return (
        PeriodLock.objects.filter(account__isnull=True)
        .order_by("-created_at", "-id")
        .values_list("lock_date", flat=True)
        .first()
    )


def account_lock_dates(account_ids: Iterable[int]) -> dict[tuple[int, str], date]:
    """The locks in force of these accounts, by (account id, currency): currency "" is a lock
    of the account in every currency. A line of (account, currency) is closed through the
    later of the (account, "") and (account, currency) dates."""
    ids = set(account_ids)
    if not ids:
        return {}
    rows = PeriodLock.objects.filter(account_id__in=ids).order_by("created_at", "id")
    # The newest row of each scope is the last one written to the dict.
    return {(a, c): d for a, c, d in rows.values_list("account_id", "currency", "lock_date")}


def journal_entry_list(
    *,
    date_from: date | None = None,
    date_to: date | None = None,
    source: str | None = None,
    account: str | None = None,
) -> QuerySet[JournalEntry]:
    """Entries newest first with their lines and accounts (no N+1 when rendered)."""
    qs = JournalEntry.objects.select_related("created_by").prefetch_related("lines__account")
    if date_from:
        qs = qs.filter(entry_date__gte=date_from)
    if date_to:
        qs = qs.filter(entry_date__lte=date_to)
    if source:
        qs = qs.filter(source=source)
    if account:
        qs = qs.filter(lines__account__code=account).distinct()
    return qs.order_by("-entry_date", "-id")


@dataclass(frozen=True, slots=True)
class Balance:
    currency: str
    debit: Decimal
    credit: Decimal
    functional_debit: Decimal
    functional_credit: Decimal

    @property
    def balance(self) -> Decimal:
        """Debits minus credits."""
        return self.debit - self.credit

    @property
    def functional_balance(self) -> Decimal:
        return self.functional_debit - self.functional_credit


def _line_filter(as_of: date | None) -> Q:
    return Q(entry__entry_date__lte=as_of) if as_of else Q()


def account_balances(*, account: Account | int, as_of: date | None = None) -> dict[str, Balance]:
    """The account's totals per currency, up to and including ``as_of`` (all time if None)."""
    account_id = account.pk if isinstance(account, Account) else account
    rows = (
        JournalLine.objects.filter(_line_filter(as_of), account_id=account_id)
        .values("currency")
        .annotate(
            d=Sum("debit"), c=Sum("credit"), fd=Sum("functional_debit"), fc=Sum("functional_credit")
        )
        .order_by("currency")
    )
    return {r["currency"]: Balance(r["currency"], r["d"], r["c"], r["fd"], r["fc"]) for r in rows}


@dataclass(frozen=True, slots=True)
class TrialBalanceRow:
    account: Account
    currency: str
    debit: Decimal
    credit: Decimal
    functional_debit: Decimal
    functional_credit: Decimal

    @property
    def balance(self) -> Decimal:
        return self.debit - self.credit


@dataclass(slots=True)
class TrialBalance:
    as_of: date | None
    rows: list[TrialBalanceRow] = field(default_factory=list)
    # Per currency: (total debits, total credits); balanced when equal.
    totals: dict[str, tuple[Decimal, Decimal]] = field(default_factory=dict)
    functional_totals: tuple[Decimal, Decimal] = (ZERO, ZERO)

    @property
    def is_balanced(self) -> bool:
        return all(d == c for d, c in self.totals.values()) and (
            self.functional_totals[0] == self.functional_totals[1]
        )


def trial_balance(*, as_of: date | None = None) -> TrialBalance:
    """Every account's debits and credits per currency, grouped by the database."""
    rows = (
        JournalLine.objects.filter(_line_filter(as_of))
        .values("account_id", "currency")
        .annotate(
            d=Sum("debit"), c=Sum("credit"), fd=Sum("functional_debit"), fc=Sum("functional_credit")
        )
        .order_by("account_id", "currency")
    )
    accounts = {a.pk: a for a in Account.objects.all()}
    result = TrialBalance(as_of=as_of)
    totals: dict[str, list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
    fd_total = fc_total = ZERO
    for r in rows:
        result.rows.append(
            TrialBalanceRow(
                accounts[r["account_id"]], r["currency"], r["d"], r["c"], r["fd"], r["fc"]
            )
        )
        totals[r["currency"]][0] += r["d"]
        totals[r["currency"]][1] += r["c"]
        fd_total += r["fd"]
        fc_total += r["fc"]
    result.rows.sort(key=lambda row: (row.account.code, row.currency))
    result.totals = {cur: (d, c) for cur, (d, c) in sorted(totals.items())}
    result.functional_totals = (fd_total, fc_total)
    return result
