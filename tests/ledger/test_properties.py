"""Hypothesis: any sequence of balanced postings and reversals, in several currencies, leaves
the trial balance at zero per currency and in the functional currency."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.fx import fx_rate_set
from core.ledger.models import Account, JournalEntry, JournalLine
from core.ledger.selectors import trial_balance
from core.ledger.services import LineSpec, journal_post, journal_reverse
from core.money import allocate, minor_unit_exponent

D = Decimal
DAY = date(2026, 6, 30)
RATES = {"EUR": D("1.0837"), "JPY": D("0.0066"), "KWD": D("3.2561")}


class Rollback(Exception):
    pass


def amounts(currency: str) -> st.SearchStrategy[Decimal]:
    exponent = minor_unit_exponent(currency)
    return st.integers(min_value=1, max_value=10**12).map(lambda u: D(u).scaleb(-exponent))


@st.composite
def entry(draw: st.DrawFn) -> tuple[str, Decimal, list[int], list[int], list[int]]:
    """A currency, a total, and how to spread it over debit and credit lines."""
    currency = draw(st.sampled_from(["USD", "EUR", "JPY", "KWD"]))
    total = draw(amounts(currency))
    debit_weights = draw(st.lists(st.integers(1, 1000), min_size=1, max_size=4))
    credit_weights = draw(st.lists(st.integers(1, 1000), min_size=1, max_size=4))
    accounts = draw(st.lists(st.integers(0, 7), min_size=8, max_size=8))
    return currency, total, debit_weights, credit_weights, accounts


operations = st.lists(
    st.one_of(
        st.tuples(st.just("post"), entry()),
        st.tuples(st.just("reverse"), st.integers(min_value=0, max_value=50)),
    ),
    min_size=1,
    max_size=12,
)


@pytest.mark.django_db
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=operations)
def test_postings_and_reversals_keep_the_trial_balance_at_zero(ops, finance_admin) -> None:
    chart = list(Account.objects.order_by("code")[:8])
    try:
        with transaction.atomic():
            for currency, rate in RATES.items():
                fx_rate_set(base=currency, quote="USD", rate=rate, rate_date=DAY)
            posted: list[int] = []
            for op, arg in ops:
                if op == "post":
                    currency, total, dw, cw, picks = arg
                    debits = allocate(total, dw, currency)
                    credits = allocate(total, cw, currency)
                    lines = [
                        LineSpec(chart[picks[i]], currency, debit=a)
                        for i, a in enumerate(debits)
                        if a > 0
                    ] + [
                        LineSpec(chart[picks[4 + i]], currency, credit=a)
                        for i, a in enumerate(credits)
                        if a > 0
                    ]
                    if len(lines) < 2:
                        continue
                    posted.append(journal_post(lines=lines, entry_date=DAY).pk)
                elif posted:
                    target = posted[arg % len(posted)]
                    if not JournalEntry.objects.filter(reversal_of_id=target).exists():
                        journal_reverse(
                            entry_id=target, actor=finance_admin, reason="prop", entry_date=DAY
                        )
            # the database guard agrees with every entry (deferred checks fire now)
            with connection.cursor() as cursor:
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            tb = trial_balance()
            assert tb.is_balanced
            for debit_total, credit_total in tb.totals.values():
                assert debit_total == credit_total
            assert tb.functional_totals[0] == tb.functional_totals[1]
            # reversed pairs net to zero in every account they touch
            for reversal in JournalEntry.objects.exclude(reversal_of=None):
                lines = JournalLine.objects.filter(entry__in=[reversal.pk, reversal.reversal_of_id])
                net: dict[tuple[int, str], Decimal] = {}
                for line in lines:
                    key = (line.account_id, line.currency)
                    net[key] = net.get(key, D(0)) + line.debit - line.credit
                assert set(net.values()) == {D(0)}
            raise Rollback
    except Rollback:
        pass
