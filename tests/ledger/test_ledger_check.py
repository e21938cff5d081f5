"""F8: the nightly check reports any entry written around the application's guards."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from core.ledger.checks import Problem, ledger_check_run, register_check
from core.ledger.models import LedgerCheckRun
from core.ledger.services import LineSpec, journal_post

D = Decimal
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def post_sale(accounts, amount: str = "10.00") -> int:
    return journal_post(
        lines=[
            LineSpec(accounts["cash"], "USD", debit=D(amount)),
            LineSpec(accounts["revenue"], "USD", credit=D(amount)),
        ],
        entry_date=date(2026, 4, 15),
    ).pk


def around_the_guards(sql: str, params: list | None = None) -> int | None:
    """Write with every trigger off, as a superuser restoring a dump could."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(sql, params)
        return cursor.fetchone()[0] if cursor.description else None


def test_clean_ledger_passes(accounts, capsys) -> None:
    post_sale(accounts)
    post_sale(accounts, "5.00")
    call_command("ledger_check")
    assert "ledger_check: ok, 2 entries verified." in capsys.readouterr().out
    run = LedgerCheckRun.objects.get()
    assert run.ok
    assert run.problems == []


def test_F8_entries_written_around_the_guards_are_reported(accounts) -> None:
    # given a posted entry, then three writes that bypass the service and the triggers
    good = post_sale(accounts)
    tampered = post_sale(accounts, "20.00")
    unbalanced = around_the_guards(
        "INSERT INTO ledger_journalentry (entry_date, description, source, functional_currency, "
        "created_at, digest) VALUES ('2026-04-16', 'raw', '', 'USD', now(), '') RETURNING id"
    )
    around_the_guards(
        "INSERT INTO ledger_journalline (entry_id, account_id, currency, debit, credit, "
        "functional_debit, functional_credit, memo) VALUES (%s, %s, 'USD', 7, 0, 7, 0, '')",
        [unbalanced, accounts["cash"].pk],
    )
    # the same amount added to both sides keeps it balanced, but it is no longer what was posted
    around_the_guards(
        "UPDATE ledger_journalline SET debit = debit + 100, functional_debit = functional_debit + 100 "
        "WHERE entry_id = %s AND debit > 0",
        [tampered],
    )
    around_the_guards(
        "UPDATE ledger_journalline SET credit = credit + 100, functional_credit = functional_credit + 100 "
        "WHERE entry_id = %s AND credit > 0",
        [tampered],
    )
    # when
    run = ledger_check_run()
    # then
    assert not run.ok
    flagged = {(p["check"], p["entry"]) for p in run.problems}
    assert ("entry_balance", unbalanced) in flagged
    assert ("entry_lines", unbalanced) in flagged
    assert ("entry_digest", unbalanced) in flagged
    assert ("entry_digest", tampered) in flagged
    assert not any(p["entry"] == good for p in run.problems)
    assert any(
        p["check"] == "trial_balance" and "in USD is off" in p["message"] for p in run.problems
    )
    # the daily totals balances are read from no longer match the lines written around them
    off_days = [p["message"] for p in run.problems if p["check"] == "day_totals"]
    assert any("in USD on 2026-04-16" in m and "lines say Dr 7.0000" in m for m in off_days)
    assert any("in USD on 2026-04-15" in m for m in off_days)
    with pytest.raises(CommandError, match="problem"):
        call_command("ledger_check")


def test_registered_checks_run_and_a_failing_check_is_reported(accounts) -> None:
    register_check("test.subledger", lambda: [Problem("test.subledger", "AR open items 5 != AR 4")])
    register_check("test.broken", lambda: 1 / 0)
    try:
        run = ledger_check_run()
    finally:
        from core.ledger import checks

        checks._EXTRA_CHECKS.pop("test.subledger")
        checks._EXTRA_CHECKS.pop("test.broken")
    messages = [p["message"] for p in run.problems]
    assert "AR open items 5 != AR 4" in messages
    assert "check failed: ZeroDivisionError: division by zero" in messages
