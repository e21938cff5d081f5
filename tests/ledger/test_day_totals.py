"""Daily totals per account (``AccountDayTotal``): kept by the database on every posting path,
folded without changing a balance, checked against the lines, and what balances are read from.
"""

from __future__ import annotations

import threading
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.db.models import Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.fx import fx_rate_set
from core.ledger.checks import ledger_check_run
from core.ledger.day_totals import day_totals_compact, day_totals_rebuild
from core.ledger.models import Account, AccountDayTotal, JournalLine
from core.ledger.selectors import (
    account_balances,
    accounts_balances,
    accounts_daily_movements,
    accounts_movements,
    trial_balance,
    trial_balance_movement,
)
from core.ledger.services import (
    EntrySpec,
    LineSpec,
    journal_post,
    journal_post_batch,
    journal_reverse,
)

D = Decimal
DAY = date(2026, 4, 15)
committing = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def sale(accounts, amount: str, day: date = DAY, currency: str = "USD", **kw):
    return journal_post(
        lines=[
            LineSpec(accounts["cash"], currency, debit=D(amount)),
            LineSpec(accounts["revenue"], currency, credit=D(amount)),
        ],
        entry_date=day,
        **kw,
    )


def totals(account: Account) -> dict[tuple[str, date], tuple[Decimal, Decimal]]:
    rows = (
        AccountDayTotal.objects.filter(account=account)
        .values("currency", "day")
        .annotate(d=Sum("debit"), c=Sum("credit"))
        .order_by()
    )
    return {(r["currency"], r["day"]): (r["d"], r["c"]) for r in rows}


def naive_balance(account_id: int, currency: str, as_of: date) -> Decimal:
    """The balance the slow way: every line of the account up to the day."""
    lines = JournalLine.objects.filter(
        account_id=account_id, currency=currency, entry__entry_date__lte=as_of
    )
    return sum((line.debit - line.credit for line in lines), D(0))


@pytest.mark.django_db
def test_every_posting_path_adds_to_the_days_totals(accounts) -> None:
    # given a single posting, a batch over two days and a reversal
    first = sale(accounts, "100.00")
    journal_post_batch(
        entries=[
            EntrySpec(
                lines=[
                    LineSpec(accounts["cash"], "USD", debit=D("40.00")),
                    LineSpec(accounts["revenue"], "USD", credit=D("40.00")),
                ],
                entry_date=day,
                idempotency_key=f"batch:{day}",
            )
            for day in (DAY, DAY + timedelta(days=1))
        ]
    )
    journal_reverse(
        entry_id=first.pk,
        actor=None,
        reason="typo",
        entry_date=DAY + timedelta(days=2),
        authorized_by_caller=True,
    )
    # then the cash account's totals are the day's debits and credits
    assert totals(accounts["cash"]) == {
        ("USD", DAY): (D("140.0000"), D(0)),
        ("USD", DAY + timedelta(days=1)): (D("40.0000"), D(0)),
        ("USD", DAY + timedelta(days=2)): (D(0), D("100.0000")),
    }
    # and balances read from them
    assert account_balances(account=accounts["cash"], as_of=DAY)["USD"].balance == D("140")
    assert account_balances(account=accounts["cash"])["USD"].balance == D("80")
    assert account_balances(account=accounts["revenue"])["USD"].balance == D("-80")
    assert account_balances(account=accounts["cash"], as_of=DAY - timedelta(days=1)) == {}


@pytest.mark.django_db
def test_movements_and_the_trial_balance_of_a_period(accounts) -> None:
    # given sales on three days in two currencies
    fx_rate_set(base="EUR", quote="USD", rate=D("1.1000"), rate_date=DAY)
    sale(accounts, "10.00", DAY - timedelta(days=1))
    sale(accounts, "20.00", DAY)
    sale(accounts, "50.00", DAY, currency="EUR")
    sale(accounts, "30.00", DAY + timedelta(days=1))
    cash, revenue = accounts["cash"].pk, accounts["revenue"].pk
    # when the movement of the middle day is read
    moved = accounts_movements(account_ids=[cash, revenue], date_from=DAY, date_to=DAY)
    # then only that day counts, per account and currency, with its functional value
    assert {key: b.balance for key, b in moved.items()} == {
        (cash, "EUR"): D("50"),
        (cash, "USD"): D("20"),
        (revenue, "EUR"): D("-50"),
        (revenue, "USD"): D("-20"),
    }
    assert moved[(cash, "EUR")].functional_balance == D("55")
    daily = accounts_daily_movements(
        account_ids=[cash], date_from=DAY - timedelta(days=1), date_to=DAY + timedelta(days=1)
    )
    assert {key: b.balance for key, b in daily.items()} == {
        ("EUR", DAY): D("50"),
        ("USD", DAY - timedelta(days=1)): D("10"),
        ("USD", DAY): D("20"),
        ("USD", DAY + timedelta(days=1)): D("30"),
    }
    period = trial_balance_movement(date_from=DAY, date_to=DAY + timedelta(days=1))
    assert period.is_balanced
    assert {(r.account.role, r.currency): r.balance for r in period.rows} == {
        ("cash", "EUR"): D("50"),
        ("cash", "USD"): D("50"),
        ("revenue", "EUR"): D("-50"),
        ("revenue", "USD"): D("-50"),
    }
    through = accounts_balances(account_ids=[cash], as_of=DAY)
    assert through[(cash, "USD")].balance == D("30")


@pytest.mark.django_db
def test_compacting_folds_a_day_into_one_row_and_keeps_every_balance(accounts) -> None:
    # given five postings on one day and one on the next: one row each
    for amount in ("1.00", "2.00", "3.00", "4.00", "5.00"):
        sale(accounts, amount)
    sale(accounts, "7.00", DAY + timedelta(days=1))
    assert AccountDayTotal.objects.filter(account=accounts["cash"]).count() == 6
    before = trial_balance(as_of=DAY).rows, trial_balance().rows
    # when the totals are folded
    folded = day_totals_compact()
    # then one row per account, currency and day is left, with the same balances
    assert folded == 8  # 5 + 5 rows of the busy day become 1 + 1
    assert AccountDayTotal.objects.filter(account=accounts["cash"]).count() == 2
    assert totals(accounts["cash"])[("USD", DAY)] == (D("15.0000"), D(0))
    assert (trial_balance(as_of=DAY).rows, trial_balance().rows) == before
    # and folding again has nothing to do; the check agrees with the lines
    assert day_totals_compact() == 0
    assert ledger_check_run().ok


@pytest.mark.django_db
def test_the_check_reports_totals_that_disagree_with_the_lines_and_rebuild_repairs(
    accounts,
) -> None:
    # given totals changed behind the ledger's back (a restore of one table, say)
    sale(accounts, "10.00")
    sale(accounts, "5.00", DAY + timedelta(days=3))
    AccountDayTotal.objects.filter(day=DAY, account=accounts["cash"]).update(debit=D("11.00"))
    AccountDayTotal.objects.filter(day=DAY + timedelta(days=3)).delete()
    # when the nightly check runs
    run = ledger_check_run()
    # then each day that is off is named
    problems = [p["message"] for p in run.problems if p["check"] == "day_totals"]
    assert not run.ok
    assert len(problems) == 3  # the changed cash day, the two deleted days
    assert any(f"in USD on {DAY}" in m and "Dr 11.0000" in m for m in problems)
    # when the totals are rebuilt from the lines
    day_totals_rebuild()
    # then they agree again, one row per account, currency and day
    assert ledger_check_run().ok
    assert AccountDayTotal.objects.count() == 4
    assert account_balances(account=accounts["cash"])["USD"].balance == D("15")


class Rollback(Exception):
    pass


postings = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=9),  # day offset
        st.sampled_from(["USD", "EUR", "JPY"]),
        st.integers(min_value=1, max_value=10**9),  # amount in minor units
        st.integers(min_value=0, max_value=3),  # debit account
        st.integers(min_value=0, max_value=3),  # credit account
        st.booleans(),  # fold before this posting
    ),
    min_size=1,
    max_size=15,
)


@pytest.mark.django_db
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=postings, as_of=st.integers(min_value=-1, max_value=10))
def test_balances_from_daily_totals_equal_the_lines(ops, as_of, accounts) -> None:
    chart = [accounts[r] for r in ("cash", "revenue", "accounts_receivable", "expenses")]
    day = DAY + timedelta(days=as_of)
    try:
        with transaction.atomic():
            for offset in range(10):
                for currency, rate in (("EUR", "1.0850"), ("JPY", "0.0067")):
                    fx_rate_set(
                        base=currency, quote="USD", rate=D(rate), rate_date=DAY + timedelta(offset)
                    )
            for offset, currency, units, debit, credit, fold in ops:
                if fold:
                    day_totals_compact()
                amount = D(units).scaleb(-2 if currency != "JPY" else 0)
                journal_post(
                    lines=[
                        LineSpec(chart[debit], currency, debit=amount),
                        LineSpec(chart[credit], currency, credit=amount),
                    ],
                    entry_date=DAY + timedelta(days=offset),
                )
            # then every account's balance as of the day is the sum of its lines
            balances = accounts_balances(account_ids=[a.pk for a in chart], as_of=day)
            for account in chart:
                for currency in ("USD", "EUR", "JPY"):
                    found = balances.get((account.pk, currency))
                    assert (found.balance if found else D(0)) == naive_balance(
                        account.pk, currency, day
                    )
            assert trial_balance(as_of=day).is_balanced
            raise Rollback
    except Rollback:
        pass


@committing
def test_concurrent_postings_to_one_account_and_day_neither_wait_nor_lose(accounts) -> None:
    # given four clerks posting to the same cash account on the same day at once, each in
    # a transaction held open after its posting
    results: list[int] = []
    errors: list[BaseException] = []
    posted = threading.Barrier(4, timeout=30)

    def clerk(n: int) -> None:
        try:
            with transaction.atomic():
                sale(accounts, f"{n}.00", idempotency_key=f"clerk:{n}")
                # every clerk has posted before any commits: a lock on a shared
                # total row would make this barrier time out
                posted.wait()
            results.append(n)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=clerk, args=(n,)) for n in range(1, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # then all four committed and the day's total is their sum
    assert errors == []
    assert sorted(results) == [1, 2, 3, 4]
    assert totals(accounts["cash"]) == {("USD", DAY): (D("10.0000"), D(0))}
    assert ledger_check_run().ok
