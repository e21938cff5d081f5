"""Financial statements read from the double-entry ledger: profit and loss, balance sheet and
a direct-method cash-flow statement.

Every figure is kept per transaction currency (never mixed, STYLE lesson 7) and in the
functional currency (the amounts each line was posted at). Balances come from
``core.ledger.selectors`` (``trial_balance``, ``accounts_balances``), which sum the ledger's
daily totals per account; a period's movement is the sum of the days in it
(``trial_balance_movement``).

Fiscal year: the system settings hold no fiscal-year start, so the fiscal year is the calendar
year. Nothing closes income and expense into equity yet, so the balance sheet shows the
income less expense of earlier years as "Retained earnings" and of the year so far as
"Current-year result"; with them it balances by construction of double entry.

Cash flow: the cash accounts are the account with the ``cash`` role, the ledger accounts of
the bank accounts under reconciliation, and processor clearing. Clearing holds customers'
card and wallet payments until the processor pays them out (a few days): a cash equivalent,
so a customer's payment is a receipt from customers when it is taken, a payout is a transfer
between cash accounts (no flow) and the fee kept back by the processor is a fee outflow.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Q

from core.exceptions import DomainError
from core.ledger.enums import AccountRole, AccountType
from core.ledger.models import Account, JournalEntry, JournalLine
from core.ledger.selectors import (
    TrialBalance,
    accounts_balances,
    trial_balance,
    trial_balance_movement,
)
from reconciliation.selectors import bank_ledger_account_ids

ZERO = Decimal(0)
# The longest period (and the furthest comparison) a statement covers: a bound on the work one
# request may ask for, and wide enough for any real report.
MAX_YEARS = 20


class InvalidPeriod(DomainError):
    code = "invalid_period"


def period_check(
    date_from: date, date_to: date, *, field_from: str = "from", field_to: str = "to"
) -> None:
    """A period runs forwards and spans at most ``MAX_YEARS`` years; InvalidPeriod if not."""
    if date_from > date_to:
        raise InvalidPeriod(
            f"The period starts ({date_from.isoformat()}) after it ends ({date_to.isoformat()}).",
            field=field_from,
        )
    years = date_to.year - date_from.year
    if years > MAX_YEARS or (
        years == MAX_YEARS and (date_to.month, date_to.day) >= (date_from.month, date_from.day)
    ):
        raise InvalidPeriod(
            f"A period may span at most {MAX_YEARS} years; {date_from.isoformat()} to "
            f"{date_to.isoformat()} is longer.",
            field=field_to,
        )


def fiscal_year_start(day: date) -> date:
    """The first day of the fiscal year holding ``day``: the calendar year (no setting yet)."""
    return date(day.year, 1, 1)


def functional_currency() -> str:
    return str(settings.SYSTEM_SETTINGS.functional_currency)


@dataclass(frozen=True, slots=True)
class Figures:
    """An amount per transaction currency, and the same in the functional currency."""

    amounts: dict[str, Decimal] = field(default_factory=dict)
    functional: Decimal = ZERO

    def __add__(self, other: Figures) -> Figures:
        amounts = dict(self.amounts)
        for currency, amount in other.amounts.items():
            amounts[currency] = amounts.get(currency, ZERO) + amount
        return Figures(dict(sorted(amounts.items())), self.functional + other.functional)

    def __neg__(self) -> Figures:
        return Figures({c: -a for c, a in self.amounts.items()}, -self.functional)

    def __sub__(self, other: Figures) -> Figures:
        return self + -other

    @property
    def is_zero(self) -> bool:
        return not self.functional and not any(self.amounts.values())

    def nonzero(self) -> Figures:
        """The same figures without the currencies that net to zero."""
        return Figures({c: a for c, a in self.amounts.items() if a}, self.functional)


def _sum(figures: Iterable[Figures]) -> Figures:
    total = Figures()
    for figure in figures:
        total = total + figure
    return total


@dataclass(frozen=True, slots=True)
class StatementLine:
    """One account (or a computed line such as retained earnings) of a statement, signed so
    that its section's normal balance is positive (income, liabilities: credits)."""

    code: str
    name: str
    current: Figures
    comparison: Figures | None = None


@dataclass(frozen=True, slots=True)
class StatementSection:
    key: str
    title: str
    lines: list[StatementLine]
    total: Figures
    comparison_total: Figures | None = None


# Per account id, the balance (debits minus credits) as Figures.
_Balances = dict[int, Figures]


def _day_before(day: date) -> date | None:
    return day - timedelta(days=1) if day > date.min else None


def _balances(as_of: date | None) -> tuple[_Balances, dict[int, Account]]:
    """Every account's debit-minus-credit balance through ``as_of`` (None: before any day),
    from the trial balance."""
    if as_of is None:
        return {}, {}
    return _by_account(trial_balance(as_of=as_of))


def _by_account(tb: TrialBalance) -> tuple[_Balances, dict[int, Account]]:
    per_account: dict[int, dict[str, Decimal]] = defaultdict(dict)
    functional: dict[int, Decimal] = defaultdict(Decimal)
    accounts: dict[int, Account] = {}
    for row in tb.rows:
        accounts[row.account.pk] = row.account
        per_account[row.account.pk][row.currency] = row.balance
        functional[row.account.pk] += row.functional_debit - row.functional_credit
    return {
        pk: Figures(dict(sorted(amounts.items())), functional[pk])
        for pk, amounts in per_account.items()
    }, accounts


def _movement(date_from: date, date_to: date) -> tuple[_Balances, dict[int, Account]]:
    """Each account's debits less credits dated ``date_from`` through ``date_to``."""
    moved, accounts = _by_account(trial_balance_movement(date_from=date_from, date_to=date_to))
    return {pk: figures.nonzero() for pk, figures in moved.items()}, accounts


# Which sign makes the account type's normal balance positive.
_SIGN = {
    AccountType.ASSET: 1,
    AccountType.EXPENSE: 1,
    AccountType.LIABILITY: -1,
    AccountType.EQUITY: -1,
    AccountType.INCOME: -1,
}


def _signed(figures: Figures, account_type: str) -> Figures:
    return figures if _SIGN[AccountType(account_type)] > 0 else -figures


def _section(
    key: str,
    title: str,
    account_type: AccountType,
    current: tuple[_Balances, dict[int, Account]],
    comparison: tuple[_Balances, dict[int, Account]] | None,
    extra: Iterable[StatementLine] = (),
) -> StatementSection:
    balances, accounts = current
    compare_balances, compare_accounts = comparison or ({}, {})
    every = {**compare_accounts, **accounts}
    lines = []
    for account in sorted(every.values(), key=lambda a: a.code):
        if account.type != account_type:
            continue
        now = _signed(balances.get(account.pk, Figures()), account.type).nonzero()
        then = (
            _signed(compare_balances.get(account.pk, Figures()), account.type).nonzero()
            if comparison is not None
            else None
        )
        if now.is_zero and (then is None or then.is_zero):
            continue
        lines.append(StatementLine(account.code, account.name, now, then))
    lines.extend(extra)
    return StatementSection(
        key=key,
        title=title,
        lines=lines,
        total=_sum(line.current for line in lines).nonzero(),
        comparison_total=(
            _sum(line.comparison or Figures() for line in lines).nonzero()
            if comparison is not None
            else None
        ),
    )


def _net_income(balances: _Balances, accounts: Mapping[int, Account]) -> Figures:
    """Income less expense among these balances: minus their debit-minus-credit sum."""
    return -_sum(
        figures
        for pk, figures in balances.items()
        if accounts[pk].type in (AccountType.INCOME, AccountType.EXPENSE)
    ).nonzero()


# ---------------------------------------------------------------------------- profit and loss


@dataclass(frozen=True, slots=True)
class ProfitAndLoss:
    date_from: date
    date_to: date
    compare_from: date | None
    compare_to: date | None
    functional_currency: str
    income: StatementSection
    expenses: StatementSection
    # Income less expenses.
    net_income: Figures
    comparison_net_income: Figures | None


def profit_and_loss(
    date_from: date,
    date_to: date,
    compare_from: date | None = None,
    compare_to: date | None = None,
) -> ProfitAndLoss:
    """Income and expense accounts moved in the period, with net income; optionally the
    same for a comparison period (both of its dates, or neither)."""
    period_check(date_from, date_to)
    if (compare_from is None) != (compare_to is None):
        raise InvalidPeriod(
            "A comparison period needs both its start and its end.",
            field="compare_to" if compare_to is None else "compare_from",
        )
    current = _movement(date_from, date_to)
    comparison = None
    if compare_from is not None and compare_to is not None:
        period_check(compare_from, compare_to, field_from="compare_from", field_to="compare_to")
        comparison = _movement(compare_from, compare_to)
    income = _section("income", "Income", AccountType.INCOME, current, comparison)
    expenses = _section("expenses", "Expenses", AccountType.EXPENSE, current, comparison)
    return ProfitAndLoss(
        date_from=date_from,
        date_to=date_to,
        compare_from=compare_from,
        compare_to=compare_to,
        functional_currency=functional_currency(),
        income=income,
        expenses=expenses,
        net_income=(income.total - expenses.total).nonzero(),
        comparison_net_income=(
            (
                (income.comparison_total or Figures()) - (expenses.comparison_total or Figures())
            ).nonzero()
            if comparison is not None
            else None
        ),
    )


# ------------------------------------------------------------------------------ balance sheet

RETAINED_EARNINGS = "Retained earnings"
CURRENT_YEAR_RESULT = "Current-year result"


@dataclass(frozen=True, slots=True)
class BalanceSheet:
    as_of: date
    compare_as_of: date | None
    functional_currency: str
    fiscal_year_start: date
    assets: StatementSection
    liabilities: StatementSection
    # The equity accounts, then retained earnings and the current-year result.
    equity: StatementSection
    liabilities_and_equity: Figures
    comparison_liabilities_and_equity: Figures | None

    @property
    def is_balanced(self) -> bool:
        """Assets equal liabilities plus equity, per currency and in the functional currency."""
        sides = [(self.assets.total, self.liabilities_and_equity)]
        if self.assets.comparison_total is not None:
            sides.append(
                (self.assets.comparison_total, self.comparison_liabilities_and_equity or Figures())
            )
        return all((a - b).nonzero().is_zero for a, b in sides)


@dataclass(frozen=True, slots=True)
class _Results:
    retained: Figures
    current_year: Figures


def _results(as_of: date, balances: tuple[_Balances, dict[int, Account]]) -> _Results:
    """Income less expense of the years before ``as_of``'s fiscal year, and of that year."""
    start = fiscal_year_start(as_of)
    retained = _net_income(*_balances(_day_before(start)))
    return _Results(retained, (_net_income(*balances) - retained).nonzero())


def balance_sheet(as_of: date, compare_as_of: date | None = None) -> BalanceSheet:
    """Assets, liabilities and equity through ``as_of`` (and ``compare_as_of``); the results
    not yet closed into equity are two lines of equity, so the sheet balances."""
    current = _balances(as_of)
    results = _results(as_of, current)
    comparison = None
    compare_results = None
    if compare_as_of is not None:
        earlier, later = sorted((as_of, compare_as_of))
        period_check(earlier, later, field_from="compare_as_of", field_to="compare_as_of")
        comparison = _balances(compare_as_of)
        compare_results = _results(compare_as_of, comparison)
    assets = _section("assets", "Assets", AccountType.ASSET, current, comparison)
    liabilities = _section("liabilities", "Liabilities", AccountType.LIABILITY, current, comparison)
    equity = _section(
        "equity",
        "Equity",
        AccountType.EQUITY,
        current,
        comparison,
        extra=[
            StatementLine(
                "",
                RETAINED_EARNINGS,
                results.retained,
                compare_results.retained if compare_results else None,
            ),
            StatementLine(
                "",
                CURRENT_YEAR_RESULT,
                results.current_year,
                compare_results.current_year if compare_results else None,
            ),
        ],
    )
    return BalanceSheet(
        as_of=as_of,
        compare_as_of=compare_as_of,
        functional_currency=functional_currency(),
        fiscal_year_start=fiscal_year_start(as_of),
        assets=assets,
        liabilities=liabilities,
        equity=equity,
        liabilities_and_equity=(liabilities.total + equity.total).nonzero(),
        comparison_liabilities_and_equity=(
            (
                (liabilities.comparison_total or Figures()) + (equity.comparison_total or Figures())
            ).nonzero()
            if compare_as_of is not None
            else None
        ),
    )


# -------------------------------------------------------------------------- cash-flow statement

# The kind of counterparty, by the role of the other side's account (in this order on the
# statement). Accounts without one of these roles: equity accounts are "equity", the rest
# "other".
CASH_FLOW_KINDS: dict[str, str] = {
    "customers": "Receipts from customers",
    "vendors": "Payments to vendors and for expenses",
    "fees": "Bank and processor fees",
    "tax": "Taxes",
    "fx": "Foreign-exchange differences",
    "equity": "Owner's equity",
    "other": "Other",
}
_KIND_BY_ROLE: dict[str, str] = {
    AccountRole.ACCOUNTS_RECEIVABLE: "customers",
    AccountRole.CUSTOMER_CREDIT: "customers",
    AccountRole.REVENUE: "customers",
    AccountRole.LATE_FEE_INCOME: "customers",
    AccountRole.ACCOUNTS_PAYABLE: "vendors",
    AccountRole.EXPENSES: "vendors",
    AccountRole.INVENTORY: "vendors",
    AccountRole.PURCHASE_DISCOUNTS: "vendors",
    AccountRole.PROCESSOR_FEES: "fees",
    AccountRole.BANK_FEES: "fees",
    AccountRole.TAX_PAYABLE: "tax",
    AccountRole.FX_GAIN_LOSS: "fx",
    AccountRole.EQUITY: "equity",
}


def counterparty_kind(account: Account) -> str:
    """The cash-flow line an account's side of a cash movement belongs to."""
    if account.role in _KIND_BY_ROLE:
        return _KIND_BY_ROLE[account.role]
    return "equity" if account.type == AccountType.EQUITY else "other"


def cash_accounts() -> list[Account]:
    """Bank and cash (the ``cash`` role and the bank accounts under reconciliation) and
    processor clearing (a cash equivalent: see the module docstring)."""
    return list(
        Account.objects.filter(
            Q(role__in=(AccountRole.CASH, AccountRole.PROCESSOR_CLEARING))
            | Q(pk__in=bank_ledger_account_ids())
        ).order_by("code")
    )


@dataclass(frozen=True, slots=True)
class CashFlowLine:
    kind: str
    title: str
    # Per currency: money in positive, money out negative.
    amounts: dict[str, Decimal]


@dataclass(frozen=True, slots=True)
class CashFlowStatement:
    date_from: date
    date_to: date
    accounts: list[Account]
    opening: dict[str, Decimal]
    lines: list[CashFlowLine]
    net_change: dict[str, Decimal]
    closing: dict[str, Decimal]

    @property
    def currencies(self) -> list[str]:
        return sorted({*self.opening, *self.closing, *self.net_change})


def _cash_on(accounts: list[Account], as_of: date | None) -> dict[str, Decimal]:
    if as_of is None:
        return {}
    total: dict[str, Decimal] = defaultdict(Decimal)
    for (_, currency), balance in accounts_balances(
        account_ids=[a.pk for a in accounts], as_of=as_of
    ).items():
        total[currency] += balance.balance
    return {c: a for c, a in sorted(total.items()) if a}


def cash_flow_statement(date_from: date, date_to: date) -> CashFlowStatement:
    """Cash received and paid in the period by kind of counterparty, per currency.

    Each entry balances per currency, so an entry's cash movement in a currency is exactly
    minus the sum of its other lines in that currency: those lines, grouped by the kind of
    their account, are its flows. Entries between cash accounts only (a payout) move nothing.
    """
    period_check(date_from, date_to)
    accounts = cash_accounts()
    cash_ids = {a.pk for a in accounts}
    entries = JournalEntry.objects.filter(
        entry_date__gte=date_from, entry_date__lte=date_to, lines__account_id__in=cash_ids
    ).values("pk")
    lines = JournalLine.objects.filter(entry__in=entries).values_list(
        "entry_id", "account_id", "currency", "debit", "credit"
    )
    kinds = {a.pk: counterparty_kind(a) for a in Account.objects.all()}
    # Per entry and currency: the cash lines' movement and the other lines by kind.
    moved: dict[tuple[int, str], Decimal] = defaultdict(Decimal)
    others: dict[tuple[int, str], dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for entry_id, account_id, currency, debit, credit in lines:
        if account_id in cash_ids:
            moved[(entry_id, currency)] += debit - credit
        else:
            others[(entry_id, currency)][kinds[account_id]] -= debit - credit
    flows: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for key, by_kind in others.items():
        # A currency the entry moves no cash in nets to zero among its other lines.
        if key not in moved:
            continue
        for kind, amount in by_kind.items():
            flows[kind][key[1]] += amount
    net: dict[str, Decimal] = defaultdict(Decimal)
    for (_entry, currency), amount in moved.items():
        net[currency] += amount
    statement_lines = [
        CashFlowLine(kind, title, {c: a for c, a in sorted(flows[kind].items()) if a})
        for kind, title in CASH_FLOW_KINDS.items()
        if any(flows[kind].values())
    ]
    return CashFlowStatement(
        date_from=date_from,
        date_to=date_to,
        accounts=accounts,
        opening=_cash_on(accounts, _day_before(date_from)),
        lines=statement_lines,
        net_change={c: a for c, a in sorted(net.items()) if a},
        closing=_cash_on(accounts, date_to),
    )
