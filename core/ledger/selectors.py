"""Ledger reads: accounts by role, the lock date, balances and the trial balance."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.db.models import DecimalField, Q, QuerySet, Sum
from django.db.models.functions import Round

from core.ledger.enums import AccountRole
from core.ledger.models import Account, AccountDayTotal, JournalEntry, ManualEntry, PeriodLock

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


def manual_entry_list(*, status: str | None = None) -> QuerySet[ManualEntry]:
    """Manual entries newest first with their people (no N+1 when rendered)."""
    qs = ManualEntry.objects.select_related("author", "decided_by")
    if status:
        qs = qs.filter(status=status)
    return qs.order_by("-created_at", "-id")


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


def _day_filter(as_of: date | None) -> Q:
    return Q(day__lte=as_of) if as_of else Q()


def rounded_sum(column: str) -> Round:
    """SUM(column) at the stored four places: exact on PostgreSQL already; SQLite (the quick
    start) adds decimals as floats, so 469.78 + 0 could otherwise differ from 469.78."""
    return Round(Sum(column), 4, output_field=DecimalField(max_digits=28, decimal_places=4))


_SUMS = {
    "d": rounded_sum("debit"),
    "c": rounded_sum("credit"),
    "fd": rounded_sum("functional_debit"),
    "fc": rounded_sum("functional_credit"),
}


def account_balances(*, account: Account | int, as_of: date | None = None) -> dict[str, Balance]:
    """The account's totals per currency, up to and including ``as_of`` (all time if None).

    Read from the daily totals the database keeps per account (``AccountDayTotal``): a sum
    over days, not over every line."""
    account_id = account.pk if isinstance(account, Account) else account
    balances = accounts_balances(account_ids=[account_id], as_of=as_of)
    return {currency: balance for (_, currency), balance in balances.items()}


def accounts_balances(
    *, account_ids: Iterable[int], as_of: date | None = None
) -> dict[tuple[int, str], Balance]:
    """Totals of several accounts by (account id, currency) up to ``as_of``: one query."""
    rows = (
        AccountDayTotal.objects.filter(_day_filter(as_of), account_id__in=list(account_ids))
        .values("account_id", "currency")
        .annotate(**_SUMS)
        .order_by("account_id", "currency")
    )
    return {
        (r["account_id"], r["currency"]): Balance(r["currency"], r["d"], r["c"], r["fd"], r["fc"])
        for r in rows
    }


def accounts_movements(
    *, account_ids: Iterable[int], date_from: date | None = None, date_to: date | None = None
) -> dict[tuple[int, str], Balance]:
    """What moved on several accounts between two days (both included), by (account id,
    currency): the sums of their daily totals."""
    window = Q()
    if date_from:
        window &= Q(day__gte=date_from)
    if date_to:
        window &= Q(day__lte=date_to)
    rows = (
        AccountDayTotal.objects.filter(window, account_id__in=list(account_ids))
        .values("account_id", "currency")
        .annotate(**_SUMS)
        .order_by("account_id", "currency")
    )
    return {
        (r["account_id"], r["currency"]): Balance(r["currency"], r["d"], r["c"], r["fd"], r["fc"])
        for r in rows
    }


def accounts_daily_movements(
    *, account_ids: Iterable[int], date_from: date, date_to: date
) -> dict[tuple[str, date], Balance]:
    """Each day's movement of several accounts taken together, by (currency, day), for the
    days between ``date_from`` and ``date_to`` that moved."""
    rows = (
        AccountDayTotal.objects.filter(
            account_id__in=list(account_ids), day__gte=date_from, day__lte=date_to
        )
        .values("currency", "day")
        .annotate(**_SUMS)
        .order_by("currency", "day")
    )
    return {
        (r["currency"], r["day"]): Balance(r["currency"], r["d"], r["c"], r["fd"], r["fc"])
        for r in rows
    }


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
    """Every account's debits and credits per currency up to ``as_of``, summed by the
    database from the daily totals."""
    return _trial_balance(AccountDayTotal.objects.filter(_day_filter(as_of)), as_of=as_of)


def trial_balance_movement(*, date_from: date, date_to: date) -> TrialBalance:
    """The trial balance of what was posted between two days (both included): a period's
    movement per account and currency, as the P&L reads it."""
    days = AccountDayTotal.objects.filter(day__gte=date_from, day__lte=date_to)
    return _trial_balance(days, as_of=date_to)


def _trial_balance(days: QuerySet[AccountDayTotal], *, as_of: date | None) -> TrialBalance:
    rows = (
        days.values("account_id", "currency").annotate(**_SUMS).order_by("account_id", "currency")
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
