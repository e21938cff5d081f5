"""Per-account daily totals (``AccountDayTotal``): kept by the database, folded nightly.

A trigger on ``ledger_journalline`` (created by migration 0011 from the SQL here) adds, for
each INSERT statement, one row per (account, currency, entry date) of the lines it wrote.
Rows are only added by postings, never updated, so two postings to the same account on the
same day never wait for each other. ``day_totals_compact`` (nightly, ``ledger.day_totals_compact``)
folds the rows of each (account, currency, day) into one; ``day_totals_rebuild`` recomputes
the whole table from the lines (the migration's backfill, and a repair after a restore).
``ledger_check`` compares the table with the lines every night.
"""

from __future__ import annotations

from django.db import connection, transaction

# PostgreSQL: a statement-level trigger reads the statement's lines as a transition table,
# so a COPY of a million lines adds one row per account, currency and day, not a million.
PG_TRIGGER = r"""
CREATE FUNCTION ledger_day_totals_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ledger_accountdaytotal (account_id, currency, day, debit, credit,
        functional_debit, functional_credit)
    SELECT l.account_id, l.currency, e.entry_date, sum(l.debit), sum(l.credit),
        sum(l.functional_debit), sum(l.functional_credit)
    FROM new_lines l JOIN ledger_journalentry e ON e.id = l.entry_id
    GROUP BY l.account_id, l.currency, e.entry_date;
    RETURN NULL;
END $$;
ALTER FUNCTION ledger_day_totals_add() SET enable_seqscan = off;

CREATE TRIGGER ledger_day_totals_add
    AFTER INSERT ON ledger_journalline
    REFERENCING NEW TABLE AS new_lines
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_day_totals_add();
"""

PG_TRIGGER_DROP = r"""
DROP TRIGGER IF EXISTS ledger_day_totals_add ON ledger_journalline;
DROP FUNCTION IF EXISTS ledger_day_totals_add();
"""

# SQLite (the quick start) has no statement triggers: one row per line, folded nightly or
# by ``day_totals_compact``.
SQLITE_TRIGGER = r"""
CREATE TRIGGER ledger_day_totals_add AFTER INSERT ON ledger_journalline
BEGIN
    INSERT INTO ledger_accountdaytotal (account_id, currency, day, debit, credit,
        functional_debit, functional_credit)
    SELECT NEW.account_id, NEW.currency, e.entry_date, NEW.debit, NEW.credit,
        NEW.functional_debit, NEW.functional_credit
    FROM ledger_journalentry e WHERE e.id = NEW.entry_id;
END;
"""

SQLITE_TRIGGER_DROP = "DROP TRIGGER IF EXISTS ledger_day_totals_add;"

_REBUILD = r"""
INSERT INTO ledger_accountdaytotal (account_id, currency, day, debit, credit,
    functional_debit, functional_credit)
SELECT l.account_id, l.currency, e.entry_date, sum(l.debit), sum(l.credit),
    sum(l.functional_debit), sum(l.functional_credit)
FROM ledger_journalline l JOIN ledger_journalentry e ON e.id = l.entry_id
GROUP BY l.account_id, l.currency, e.entry_date
"""

# The days holding more than one row, folded into one row each. READ COMMITTED: rows of
# postings that commit meanwhile are not seen, so they stay as they are for the next fold.
_PG_COMPACT = r"""
WITH gone AS (
    DELETE FROM ledger_accountdaytotal t
    USING (
        SELECT account_id, currency, day FROM ledger_accountdaytotal
        GROUP BY account_id, currency, day HAVING count(*) > 1
    ) k
    WHERE t.account_id = k.account_id AND t.currency = k.currency AND t.day = k.day
    RETURNING t.account_id, t.currency, t.day, t.debit, t.credit,
        t.functional_debit, t.functional_credit
)
INSERT INTO ledger_accountdaytotal (account_id, currency, day, debit, credit,
    functional_debit, functional_credit)
SELECT account_id, currency, day, sum(debit), sum(credit), sum(functional_debit),
    sum(functional_credit)
FROM gone GROUP BY account_id, currency, day
"""

_SQLITE_COMPACT = (
    r"""
CREATE TEMP TABLE ledger_daytotal_fold AS
SELECT account_id, currency, day, sum(debit) AS debit, sum(credit) AS credit,
    sum(functional_debit) AS functional_debit, sum(functional_credit) AS functional_credit
FROM ledger_accountdaytotal GROUP BY account_id, currency, day HAVING count(*) > 1
""",
    r"""
DELETE FROM ledger_accountdaytotal WHERE EXISTS (
    SELECT 1 FROM ledger_daytotal_fold f WHERE f.account_id = ledger_accountdaytotal.account_id
    AND f.currency = ledger_accountdaytotal.currency AND f.day = ledger_accountdaytotal.day)
""",
    r"""
INSERT INTO ledger_accountdaytotal (account_id, currency, day, debit, credit,
    functional_debit, functional_credit)
SELECT account_id, currency, day, debit, credit, functional_debit, functional_credit
FROM ledger_daytotal_fold
""",
    "DROP TABLE ledger_daytotal_fold",
)

# One fold at a time (two would each fold what the other has not yet deleted).
_COMPACT_LOCK = 7_301_011


def day_totals_compact() -> int:
    """Fold each (account, currency, day) with several rows into one; returns the number
    of rows removed. Balances do not change (the check ``day_totals`` says so)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM ledger_accountdaytotal")
        before = cursor.fetchone()[0]
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_COMPACT_LOCK])
            cursor.execute(_PG_COMPACT)
        else:
            for statement in _SQLITE_COMPACT:
                cursor.execute(statement)
        cursor.execute("SELECT count(*) FROM ledger_accountdaytotal")
        after = cursor.fetchone()[0]
    return int(before - after)


def day_totals_rebuild() -> None:
    """Recompute every daily total from the journal lines (one row per account, currency
    and day). Locks out postings while it runs, so nothing is counted twice or missed."""
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("LOCK TABLE ledger_journalline IN SHARE MODE")
        # DELETE, not TRUNCATE: allowed in a transaction that has just posted.
        cursor.execute("DELETE FROM ledger_accountdaytotal")
        cursor.execute(_REBUILD)
