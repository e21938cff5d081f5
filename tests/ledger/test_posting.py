"""The posting service: balanced entries only, clear refusals that write nothing."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from core.fx import FxRateMissing, fx_rate_set
from core.ledger.exceptions import (
    AlreadyReversed,
    InactiveAccount,
    InvalidLine,
    PeriodLocked,
    UnbalancedEntry,
)
from core.ledger.models import Account, JournalEntry, JournalLine, PeriodLock
from core.ledger.selectors import account_balances, trial_balance
from core.ledger.services import (
    IdempotencyKeyReused,
    LineSpec,
    journal_post,
    journal_reverse,
    period_lock_set,
)

D = Decimal
DAY = date(2026, 4, 15)
pytestmark = pytest.mark.django_db


def sale(
    accounts: dict[str, Account], amount: str = "100.00", currency: str = "USD"
) -> list[LineSpec]:
    return [
        LineSpec(accounts["accounts_receivable"], currency, debit=D(amount)),
        LineSpec(accounts["revenue"], currency, credit=D(amount)),
    ]


def assert_nothing_posted() -> None:
    assert JournalEntry.objects.count() == 0
    assert JournalLine.objects.count() == 0


def test_balanced_entry_is_posted_with_functional_amounts(accounts) -> None:
    # when
    entry = journal_post(
        lines=[
            LineSpec(accounts["accounts_receivable"], "USD", debit=D("108.75")),
            LineSpec(accounts["revenue"], "USD", credit=D("100.00")),
            LineSpec(accounts["tax_payable"], "USD", credit=D("8.75")),
        ],
        entry_date=DAY,
        description="Invoice INV-2026-000001",
        source="billing.invoice:1",
    )
    # then
    lines = list(
        entry.lines.order_by("pk").values_list(
            "account__role", "debit", "credit", "functional_debit", "functional_credit"
        )
    )
    assert lines == [
        ("accounts_receivable", D("108.75"), D(0), D("108.75"), D(0)),
        ("revenue", D(0), D("100.00"), D(0), D("100.00")),
        ("tax_payable", D(0), D("8.75"), D(0), D("8.75")),
    ]
    assert entry.functional_currency == "USD"
    assert entry.digest


def test_unbalanced_entry_is_refused_and_nothing_is_written(accounts) -> None:
    # when
    with pytest.raises(UnbalancedEntry) as exc:
        journal_post(
            lines=[
                LineSpec(accounts["accounts_receivable"], "USD", debit=D("100.00")),
                LineSpec(accounts["revenue"], "USD", credit=D("99.99")),
            ],
            entry_date=DAY,
        )
    # then
    assert str(exc.value) == (
        "The entry does not balance in USD: debits 100.00 and credits 99.99 differ by 0.01."
    )
    assert_nothing_posted()


def test_balance_is_checked_per_currency(accounts) -> None:
    # 100 USD against 100 EUR adds up to 200 on each side but balances in no currency
    with pytest.raises(UnbalancedEntry, match="in EUR"):
        journal_post(
            lines=[
                LineSpec(accounts["cash"], "USD", debit=D("100")),
                LineSpec(accounts["revenue"], "EUR", credit=D("100")),
                LineSpec(accounts["revenue"], "USD", credit=D("100")),
            ],
            entry_date=DAY,
        )
    assert_nothing_posted()


def test_functional_imbalance_is_refused(accounts) -> None:
    # given each currency balances, but the functional values given do not
    with pytest.raises(UnbalancedEntry, match="functional currency USD"):
        journal_post(
            lines=[
                LineSpec(accounts["cash"], "EUR", debit=D("100"), functional=D("110")),
                LineSpec(
                    accounts["accounts_receivable"], "EUR", credit=D("100"), functional=D("105")
                ),
            ],
            entry_date=DAY,
        )
    assert_nothing_posted()


@pytest.mark.parametrize(
    ("debit", "credit", "message"),
    [
        (D("10"), D("10"), "exactly one of debit and credit"),
        (D("0"), D("0"), "exactly one of debit and credit"),
        (D("-10"), D("0"), "negative"),
        (D("10.00001"), D("0"), "more than 4 decimal places"),
        (D("NaN"), D("0"), "not a finite Decimal"),
    ],
)
def test_malformed_lines_are_refused(
    accounts, debit: Decimal, credit: Decimal, message: str
) -> None:
    with pytest.raises(InvalidLine, match=message):
        journal_post(
            lines=[
                LineSpec(accounts["cash"], "USD", debit=debit, credit=credit),
                LineSpec(accounts["revenue"], "USD", credit=D("10")),
            ],
            entry_date=DAY,
        )
    assert_nothing_posted()


def test_single_line_entry_is_refused(accounts) -> None:
    with pytest.raises(UnbalancedEntry, match="at least two lines"):
        journal_post(lines=[LineSpec(accounts["cash"], "USD", debit=D("1"))], entry_date=DAY)
    assert_nothing_posted()


def test_line_on_inactive_account_is_refused(accounts) -> None:
    # given
    Account.objects.filter(pk=accounts["suspense"].pk).update(is_active=False)
    # when / then
    with pytest.raises(InactiveAccount, match="1900 Suspense is inactive"):
        journal_post(
            lines=[
                LineSpec(accounts["suspense"], "USD", debit=D("5")),
                LineSpec(accounts["cash"], "USD", credit=D("5")),
            ],
            entry_date=DAY,
        )
    assert_nothing_posted()


def test_entry_in_locked_period_is_refused(accounts, finance_admin) -> None:
    # given the books closed through March
    period_lock_set(lock_date=date(2026, 3, 31), reason="Q1 close", actor=finance_admin)
    # when / then
    with pytest.raises(PeriodLocked) as exc:
        journal_post(lines=sale(accounts), entry_date=date(2026, 3, 31))
    assert "closed through 2026-03-31" in str(exc.value)
    assert exc.value.code == "period_locked"
    assert_nothing_posted()
    # and the first open day is fine
    journal_post(lines=sale(accounts), entry_date=date(2026, 4, 1))
    assert JournalEntry.objects.count() == 1


def test_reopening_is_a_new_lock_row_by_someone_allowed(accounts, finance_admin, make_user) -> None:
    period_lock_set(lock_date=date(2026, 3, 31), reason="Q1 close", actor=finance_admin)
    period_lock_set(
        lock_date=date(2026, 2, 28), reason="Reopen March for an accrual", actor=finance_admin
    )
    journal_post(lines=sale(accounts), entry_date=date(2026, 3, 15))
    assert list(PeriodLock.objects.order_by("pk").values_list("lock_date", flat=True)) == [
        date(2026, 3, 31),
        date(2026, 2, 28),
    ]
    clerk = make_user("ar_clerk")
    from core.exceptions import PermissionDeniedError

    with pytest.raises(PermissionDeniedError):
        period_lock_set(lock_date=date(2026, 4, 30), reason="x", actor=clerk)


def test_foreign_currency_lines_get_functional_amounts_at_the_days_rate(accounts) -> None:
    # given 1 EUR = 1.0837 USD on the day
    fx_rate_set(base="EUR", quote="USD", rate=D("1.0837"), rate_date=DAY)
    # when three EUR credits that each convert with a rounding remainder
    entry = journal_post(
        lines=[
            LineSpec(accounts["accounts_receivable"], "EUR", debit=D("100.00")),
            LineSpec(accounts["revenue"], "EUR", credit=D("33.33")),
            LineSpec(accounts["revenue"], "EUR", credit=D("33.33")),
            LineSpec(accounts["revenue"], "EUR", credit=D("33.34")),
        ],
        entry_date=DAY,
    )
    # then the functional side balances exactly: 108.37 split by largest remainder
    rows = list(entry.lines.order_by("pk").values_list("functional_debit", "functional_credit"))
    assert rows == [
        (D("108.3700"), D(0)),
        (D(0), D("36.1197")),
        (D(0), D("36.1197")),
        (D(0), D("36.1306")),
    ]


def test_foreign_currency_without_rate_is_refused(accounts) -> None:
    with pytest.raises(FxRateMissing, match="No GBP/USD FX rate covers 2026-04-15"):
        journal_post(lines=sale(accounts, currency="GBP"), entry_date=DAY)
    assert_nothing_posted()


def test_same_idempotency_key_returns_the_first_entry(accounts) -> None:
    first = journal_post(lines=sale(accounts), entry_date=DAY, idempotency_key="invoice:1:issue")
    again = journal_post(lines=sale(accounts), entry_date=DAY, idempotency_key="invoice:1:issue")
    assert again.pk == first.pk
    assert JournalEntry.objects.count() == 1
    with pytest.raises(IdempotencyKeyReused):
        journal_post(
            lines=sale(accounts, "5.00"), entry_date=DAY, idempotency_key="invoice:1:issue"
        )
    assert JournalEntry.objects.count() == 1


def test_reversal_mirrors_the_entry_once(accounts, finance_admin) -> None:
    # given
    fx_rate_set(base="EUR", quote="USD", rate=D("1.1"), rate_date=DAY)
    original = journal_post(lines=sale(accounts, "50.00", "EUR"), entry_date=DAY)
    # when
    reversal = journal_reverse(
        entry_id=original.pk, actor=finance_admin, reason="duplicate", entry_date=date(2026, 4, 20)
    )
    # then debits and credits swap at the original functional values, and all nets to zero
    assert reversal.reversal_of_id == original.pk
    assert reversal.description == f"Reversal of JE-{original.pk}: duplicate"
    assert reversal.created_by == finance_admin
    assert sorted(
        reversal.lines.values_list("debit", "credit", "functional_debit", "functional_credit")
    ) == sorted(
        (c, d, fc, fd)
        for d, c, fd, fc in original.lines.values_list(
            "debit", "credit", "functional_debit", "functional_credit"
        )
    )
    assert account_balances(account=accounts["accounts_receivable"])["EUR"].balance == 0
    with pytest.raises(AlreadyReversed):
        journal_reverse(entry_id=original.pk, actor=finance_admin, reason="again")
    assert JournalEntry.objects.count() == 2


def test_balance_as_of_a_date_and_trial_balance(accounts) -> None:
    # given
    journal_post(lines=sale(accounts, "100.00"), entry_date=date(2026, 4, 1))
    journal_post(lines=sale(accounts, "40.00"), entry_date=date(2026, 4, 10))
    journal_post(
        lines=[
            LineSpec(accounts["cash"], "USD", debit=D("30.00")),
            LineSpec(accounts["accounts_receivable"], "USD", credit=D("30.00")),
        ],
        entry_date=date(2026, 4, 12),
    )
    # when / then
    ar = accounts["accounts_receivable"]
    assert account_balances(account=ar, as_of=date(2026, 4, 5))["USD"].balance == D("100.00")
    assert account_balances(account=ar, as_of=date(2026, 4, 11))["USD"].balance == D("140.00")
    assert account_balances(account=ar)["USD"].balance == D("110.00")
    assert account_balances(account=ar, as_of=date(2026, 3, 31)) == {}
    tb = trial_balance(as_of=date(2026, 4, 11))
    assert tb.is_balanced
    assert tb.totals == {"USD": (D("140.00"), D("140.00"))}
    assert [(r.account.code, r.balance) for r in tb.rows] == [
        ("1100", D("140.00")),
        ("4000", D("-140.00")),
    ]


def test_selector_query_counts(accounts, django_assert_num_queries) -> None:
    journal_post(lines=sale(accounts), entry_date=DAY)
    with django_assert_num_queries(2):
        trial_balance()
    with django_assert_num_queries(1):
        account_balances(account=accounts["cash"])
