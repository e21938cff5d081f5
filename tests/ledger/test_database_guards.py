"""PostgreSQL refuses what the posting service refuses, even through raw SQL or the ORM.

Transactional tests: the balance trigger is deferred to commit, so the writes must commit.
"""

from __future__ import annotations

import threading
import time
from datetime import date
from decimal import Decimal

import psycopg
import pytest
from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction

from core.ledger.models import Account, JournalEntry, JournalLine
from core.ledger.selectors import trial_balance
from core.ledger.services import LineSpec, journal_post

D = Decimal
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

INSERT_ENTRY = (
    "INSERT INTO ledger_journalentry (entry_date, description, source, functional_currency, "
    "created_at, digest) VALUES ('2026-04-15', 'raw', '', 'USD', now(), '') RETURNING id"
)
INSERT_LINE = (
    "INSERT INTO ledger_journalline (entry_id, account_id, currency, debit, credit, "
    "functional_debit, functional_credit, memo) VALUES (%s, %s, 'USD', %s, %s, %s, %s, '')"
)


def raw_line(cursor, entry_id: int, account: Account, debit: str, credit: str) -> None:
    cursor.execute(INSERT_LINE, [entry_id, account.pk, debit, credit, debit, credit])


def test_unbalanced_raw_insert_cannot_commit(accounts) -> None:
    # when an unbalanced entry is written with raw SQL
    with (
        pytest.raises(IntegrityError, match="does not balance in USD"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(INSERT_ENTRY)
        entry_id = cursor.fetchone()[0]
        raw_line(cursor, entry_id, accounts["cash"], "100", "0")
        raw_line(cursor, entry_id, accounts["revenue"], "0", "99")
    # then nothing was committed
    assert JournalEntry.objects.count() == 0
    assert JournalLine.objects.count() == 0


def test_unbalanced_orm_writes_cannot_commit(accounts) -> None:
    with pytest.raises(IntegrityError, match="does not balance"), transaction.atomic():
        entry = JournalEntry.objects.create(entry_date=date(2026, 4, 15), functional_currency="USD")
        JournalLine.objects.create(
            entry=entry, account=accounts["cash"], currency="USD", debit=D(5), functional_debit=D(5)
        )
        JournalLine.objects.create(
            entry=entry,
            account=accounts["revenue"],
            currency="USD",
            credit=D(4),
            functional_credit=D(4),
        )
    assert JournalEntry.objects.count() == 0


def test_entry_without_lines_cannot_commit() -> None:
    with pytest.raises(IntegrityError, match="at least two"), transaction.atomic():
        JournalEntry.objects.create(entry_date=date(2026, 4, 15), functional_currency="USD")
    assert JournalEntry.objects.count() == 0


def test_functional_imbalance_cannot_commit(accounts) -> None:
    with (
        pytest.raises(IntegrityError, match="functional currency"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(INSERT_ENTRY)
        entry_id = cursor.fetchone()[0]
        cursor.execute(INSERT_LINE, [entry_id, accounts["cash"].pk, "10", "0", "11", "0"])
        cursor.execute(INSERT_LINE, [entry_id, accounts["revenue"].pk, "0", "10", "0", "10"])
    assert JournalEntry.objects.count() == 0


def test_balanced_raw_insert_commits(accounts) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(INSERT_ENTRY)
        entry_id = cursor.fetchone()[0]
        raw_line(cursor, entry_id, accounts["cash"], "10", "0")
        raw_line(cursor, entry_id, accounts["revenue"], "0", "10")
    assert JournalLine.objects.filter(entry_id=entry_id).count() == 2


def test_line_added_later_to_a_posted_entry_is_refused(accounts) -> None:
    # given a posted entry
    entry = journal_post(
        lines=[
            LineSpec(accounts["cash"], "USD", debit=D("10")),
            LineSpec(accounts["revenue"], "USD", credit=D("10")),
        ],
        entry_date=date(2026, 4, 15),
    )
    # when a balanced pair of lines is added to it in a later transaction
    with (
        pytest.raises(IntegrityError, match="transaction that creates it"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        raw_line(cursor, entry.pk, accounts["cash"], "1", "0")
        raw_line(cursor, entry.pk, accounts["revenue"], "0", "1")
    # then
    assert entry.lines.count() == 2


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE ledger_journalline SET debit = debit + 1",
        "UPDATE ledger_journalline SET memo = 'edited'",
        "DELETE FROM ledger_journalline",
        "UPDATE ledger_journalentry SET entry_date = '2020-01-01'",
        "DELETE FROM ledger_journalentry",
    ],
)
def test_posted_rows_cannot_be_updated_or_deleted(accounts, sql: str) -> None:
    journal_post(
        lines=[
            LineSpec(accounts["cash"], "USD", debit=D("10")),
            LineSpec(accounts["revenue"], "USD", credit=D("10")),
        ],
        entry_date=date(2026, 4, 15),
    )
    with (
        pytest.raises(DatabaseError, match="cannot be updated or deleted"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql)
    assert list(JournalLine.objects.values_list("debit", "credit", "memo").order_by("pk")) == [
        (D("10"), D(0), ""),
        (D(0), D("10"), ""),
    ]


def test_F6_connections_killed_during_postings_leave_all_or_nothing(accounts) -> None:
    """Kill the posting connections while they post; each entry is whole or absent."""
    # given writers posting 3-line entries in a loop on their own connections
    dsn = settings.DATABASES["default"]
    conninfo = (
        f"host={dsn['HOST']} port={dsn['PORT'] or 5432} user={dsn['USER']} dbname={dsn['NAME']}"
    )
    stop = threading.Event()
    committed: list[int] = []

    def writer() -> None:
        while not stop.is_set():
            try:
                entry = journal_post(
                    lines=[
                        LineSpec(accounts["accounts_receivable"], "USD", debit=D("10.00")),
                        LineSpec(accounts["revenue"], "USD", credit=D("9.00")),
                        LineSpec(accounts["tax_payable"], "USD", credit=D("1.00")),
                    ],
                    entry_date=date(2026, 4, 15),
                )
                committed.append(entry.pk)
            except Exception:
                connection.close()  # the killed connection is replaced on the next call
        connection.close()

    threads = [threading.Thread(target=writer) for _ in range(3)]
    for t in threads:
        t.start()
    # when their backends are terminated again and again
    kills = 0
    with psycopg.connect(conninfo, autocommit=True) as admin:
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            kills += admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND application_name = '' AND state <> 'idle'"
            ).fetchone()[0]
            time.sleep(0.02)
    stop.set()
    for t in threads:
        t.join()
    # then every entry that exists is complete and balanced, and the ledger balances
    assert kills > 0
    assert committed
    counts = {e.pk: e.lines.count() for e in JournalEntry.objects.all()}
    assert set(counts.values()) == {3}
    assert set(committed) <= set(counts)
    assert trial_balance().is_balanced


def test_lines_added_after_the_checks_ran_early_are_checked_at_once(accounts) -> None:
    # given an entry whose deferred check is run early with SET CONSTRAINTS ALL IMMEDIATE
    with (
        pytest.raises(IntegrityError, match="does not balance in USD"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(INSERT_ENTRY)
        entry_id = cursor.fetchone()[0]
        raw_line(cursor, entry_id, accounts["cash"], "10", "0")
        raw_line(cursor, entry_id, accounts["revenue"], "0", "10")
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        # when a line is added to it afterwards in the same transaction
        raw_line(cursor, entry_id, accounts["cash"], "500", "0")
    # then it is refused, and nothing was committed
    assert JournalEntry.objects.count() == 0
