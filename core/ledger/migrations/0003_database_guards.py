"""PostgreSQL guards that hold even for writes that bypass the posting service.

- An entry must balance per currency and in the functional currency, with at least two
  lines: a deferred constraint trigger on the entry checks it at commit, once per entry.
- Lines can only be added in the transaction that created their entry (a hidden ``txid``
  column, checked by a statement-level trigger), so a committed entry cannot be unbalanced
  later by adding a line.
- Posted entries and lines cannot be updated or deleted.

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
BEGIN
    IF EXISTS (
        SELECT 1 FROM new_lines l JOIN ledger_journalentry e ON e.id = l.entry_id
        WHERE e.txid <> txid_current()
    ) THEN
        RAISE EXCEPTION 'ledger: lines can only be added to a journal entry in the transaction that creates it'
            USING ERRCODE = '23514';
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
"""

BACKWARD = r"""
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
