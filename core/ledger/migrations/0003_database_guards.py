"""PostgreSQL guards that hold even for writes that bypass the posting service.

- An entry must balance per currency and in the functional currency, with at least two
  lines: a deferred constraint trigger on the entry checks it at commit, once per entry.
- Lines can only be added in the transaction that created their entry (a hidden ``txid``
  column, checked by a statement-level trigger), so a committed entry cannot be unbalanced
  later by adding a line.
- Posted entries and lines cannot be updated or deleted.

It also adds ``ledger_post_entry()``, the posting service's insert of one entry and its lines
in one call: PL/pgSQL keeps the plans of its statements for the session, which the ORM's
one-off SQL cannot (prepared statements are off so that connection poolers keep working).
It checks nothing the triggers rely on; the triggers check its rows like any others.

SQLite (the quick-start demo) has none of this; ``manage.py ledger_check`` still verifies.
"""

from django.db import migrations

FORWARD = r"""
ALTER TABLE ledger_journalentry ADD COLUMN txid bigint NOT NULL DEFAULT txid_current();

CREATE FUNCTION ledger_entry_check_balance() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    r record;
    n integer := 0;
    fd numeric := 0;
    fc numeric := 0;
BEGIN
    -- Remember that balance checks ran in this transaction (SET CONSTRAINTS ... IMMEDIATE
    -- runs them before commit): lines inserted after that are checked at once, below.
    PERFORM set_config('ledger.checks_ran', '1', true);
    IF NEW.txid <> txid_current() THEN
        RAISE EXCEPTION 'ledger: journal entry % carries a foreign transaction id', NEW.id
            USING ERRCODE = '23514';
    END IF;
    FOR r IN
        SELECT currency, count(*) AS c, sum(debit) AS d, sum(credit) AS k,
               sum(functional_debit) AS f_d, sum(functional_credit) AS f_c
        FROM ledger_journalline WHERE entry_id = NEW.id GROUP BY currency
    LOOP
        IF r.d <> r.k THEN
            RAISE EXCEPTION 'ledger: journal entry % does not balance in %: debits % credits %',
                NEW.id, r.currency, r.d, r.k USING ERRCODE = '23514';
        END IF;
        n := n + r.c;
        fd := fd + r.f_d;
        fc := fc + r.f_c;
    END LOOP;
    IF n < 2 THEN
        RAISE EXCEPTION 'ledger: journal entry % has % line(s); at least two are needed', NEW.id, n
            USING ERRCODE = '23514';
    END IF;
    IF fd <> fc THEN
        RAISE EXCEPTION 'ledger: journal entry % does not balance in the functional currency: debits % credits %',
            NEW.id, fd, fc USING ERRCODE = '23514';
    END IF;
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER ledger_entry_balanced
    AFTER INSERT ON ledger_journalentry
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_entry_check_balance();

CREATE FUNCTION ledger_line_entry_open() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    IF EXISTS (
        SELECT 1 FROM new_lines l JOIN ledger_journalentry e ON e.id = l.entry_id
        WHERE e.txid <> txid_current()
    ) THEN
        RAISE EXCEPTION 'ledger: lines can only be added to a journal entry in the transaction that creates it'
            USING ERRCODE = '23514';
    END IF;
    IF current_setting('ledger.checks_ran', true) = '1' THEN
        -- The deferred checks of this transaction have already run, so they will not see
        -- these lines: each entry they touch must balance now.
        FOR r IN
            SELECT l.entry_id, l.currency, sum(l.debit) AS d, sum(l.credit) AS k
            FROM ledger_journalline l
            WHERE l.entry_id IN (SELECT DISTINCT entry_id FROM new_lines)
            GROUP BY l.entry_id, l.currency
            HAVING sum(l.debit) <> sum(l.credit)
        LOOP
            RAISE EXCEPTION 'ledger: journal entry % does not balance in %: debits % credits %',
                r.entry_id, r.currency, r.d, r.k USING ERRCODE = '23514';
        END LOOP;
        FOR r IN
            SELECT l.entry_id, sum(l.functional_debit) AS d, sum(l.functional_credit) AS k
            FROM ledger_journalline l
            WHERE l.entry_id IN (SELECT DISTINCT entry_id FROM new_lines)
            GROUP BY l.entry_id
            HAVING sum(l.functional_debit) <> sum(l.functional_credit)
        LOOP
            RAISE EXCEPTION 'ledger: journal entry % does not balance in the functional currency: debits % credits %',
                r.entry_id, r.d, r.k USING ERRCODE = '23514';
        END LOOP;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER ledger_line_entry_open
    AFTER INSERT ON ledger_journalline
    REFERENCING NEW TABLE AS new_lines
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_line_entry_open();

CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger: posted % rows cannot be updated or deleted; post a reversing entry',
        TG_TABLE_NAME USING ERRCODE = '55000';
END $$;

CREATE TRIGGER ledger_journalentry_immutable
    BEFORE UPDATE OR DELETE ON ledger_journalentry
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_journalline_immutable
    BEFORE UPDATE OR DELETE ON ledger_journalline
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

-- Returns the new entry's id, or NULL when nothing was written: the idempotency key is
-- taken, or (p_checked) a line's account is missing, inactive or of another currency, or
-- the entry date is in a closed period. The service then reads and reports which.
CREATE FUNCTION ledger_post_entry(
    p_checked boolean, p_entry_date date, p_description varchar, p_source varchar,
    p_idempotency_key varchar, p_reversal_of_id bigint, p_functional_currency varchar,
    p_created_by_id integer, p_created_at timestamptz, p_digest varchar,
    p_account_id bigint[], p_currency varchar[], p_debit numeric[], p_credit numeric[],
    p_functional_debit numeric[], p_functional_credit numeric[], p_memo varchar[]
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    new_id bigint;
BEGIN
    IF p_checked AND (
        (SELECT count(*) FROM ledger_account a
         JOIN unnest(p_account_id, p_currency) AS l(account_id, currency)
           ON a.id = l.account_id
         WHERE a.is_active AND (a.currency = '' OR a.currency = l.currency))
        <> cardinality(p_account_id)
        OR p_entry_date <= (SELECT lock_date FROM ledger_periodlock
                            ORDER BY created_at DESC, id DESC LIMIT 1)
    ) THEN
        RETURN NULL;
    END IF;
    INSERT INTO ledger_journalentry (entry_date, description, source, idempotency_key,
        reversal_of_id, functional_currency, created_by_id, created_at, digest)
    VALUES (p_entry_date, p_description, p_source, p_idempotency_key, p_reversal_of_id,
        p_functional_currency, p_created_by_id, p_created_at, p_digest)
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id INTO new_id;
    IF new_id IS NOT NULL THEN
        INSERT INTO ledger_journalline (entry_id, account_id, currency, debit, credit,
            functional_debit, functional_credit, memo)
        SELECT new_id, l.* FROM unnest(p_account_id, p_currency, p_debit, p_credit,
            p_functional_debit, p_functional_credit, p_memo) AS l;
    END IF;
    RETURN new_id;
END $$;
"""

BACKWARD = r"""
DROP FUNCTION IF EXISTS ledger_post_entry(boolean, date, varchar, varchar, varchar, bigint,
    varchar, integer, timestamptz, varchar, bigint[], varchar[], numeric[], numeric[],
    numeric[], numeric[], varchar[]);
DROP TRIGGER IF EXISTS ledger_journalline_immutable ON ledger_journalline;
DROP TRIGGER IF EXISTS ledger_journalentry_immutable ON ledger_journalentry;
DROP FUNCTION IF EXISTS ledger_refuse_change();
DROP TRIGGER IF EXISTS ledger_line_entry_open ON ledger_journalline;
DROP FUNCTION IF EXISTS ledger_line_entry_open();
DROP TRIGGER IF EXISTS ledger_entry_balanced ON ledger_journalentry;
DROP FUNCTION IF EXISTS ledger_entry_check_balance();
ALTER TABLE ledger_journalentry DROP COLUMN IF EXISTS txid;
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("ledger", "0002_chart_of_accounts")]
    operations = [migrations.RunPython(forward, backward)]
