"""History is append-only in the database (SOX): a PostgreSQL trigger on every
django-simple-history table refuses UPDATE and DELETE, whatever writes them (the ORM, raw SQL,
a shell), as the ledger's own guards do (``ledger/0003``).

The triggers are (re)installed after every ``migrate`` and test flush by a ``post_migrate``
receiver (``CoreConfig.ready``): every history table of every app, those added later
included, without a migration of their own. Installing is idempotent and touches only the
tables that lack the trigger.

Three writes still pass, each narrow:

- a user is deleted: Django's ``on_delete=SET_NULL`` of ``history_user`` (an UPDATE changing
  only ``history_user_id``, to NULL);
- a GDPR erasure (``history_erasure_allow()`` in its transaction): personal fields may be
  pseudonymised, never which record a row is, when it was written, its kind or its author;
- a key rotation (``history_reencrypt_allow()``): only encrypted values change, each to
  another encrypted value.

DELETE is never allowed. TRUNCATE is not blocked (the test database is flushed with it, and
it needs table ownership, which the application's role does not have). SQLite (the quick
start) has none of this.
"""

from __future__ import annotations

from typing import Any

from django.db import connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Model

TRIGGER_NAME = "history_append_only"
ERASURE_SETTING = "backoffice.history_erasure"
REENCRYPT_SETTING = "backoffice.history_reencrypt"

# The function's text names the two settings above; an erasure never changes which record a
# row is, when, what kind or by whom (history_id, history_date, history_type, history_user_id,
# id).
FUNCTION_SQL = r"""
CREATE OR REPLACE FUNCTION history_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    old_row jsonb;
    new_row jsonb;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        old_row := to_jsonb(OLD);
        new_row := to_jsonb(NEW);
        -- A user deleted: on_delete=SET_NULL of history_user, and nothing else.
        IF old_row ? 'history_user_id' AND new_row -> 'history_user_id' = 'null'::jsonb
           AND (new_row - 'history_user_id') = (old_row - 'history_user_id') THEN
            RETURN NEW;
        END IF;
        -- A GDPR erasure pseudonymises personal fields; the row stays the same row.
        IF current_setting('backoffice.history_erasure', true) = 'on' AND NOT EXISTS (
            SELECT 1 FROM unnest(ARRAY['history_id', 'history_date', 'history_type',
                                       'history_user_id', 'id']) AS k(name)
            WHERE old_row -> k.name IS DISTINCT FROM new_row -> k.name
        ) THEN
            RETURN NEW;
        END IF;
        -- A key rotation re-encrypts: every changed value is encrypted before and after.
        IF current_setting('backoffice.history_reencrypt', true) = 'on' AND NOT EXISTS (
            SELECT 1 FROM jsonb_each(old_row) AS o
            JOIN jsonb_each(new_row) AS n ON n.key = o.key
            WHERE o.value IS DISTINCT FROM n.value
              AND NOT (jsonb_typeof(o.value) = 'string' AND jsonb_typeof(n.value) = 'string'
                       AND o.value #>> '{}' LIKE 'fernet:%'
                       AND n.value #>> '{}' LIKE 'fernet:%')
        ) THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION 'history: % rows are append-only (SOX); % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = '55000';
END $$;
"""


def history_tables() -> list[str]:
    """The table of every history model django-simple-history registered (all apps)."""
    from simple_history.models import registered_models
    from simple_history.utils import get_history_model_for_model

    tables = set()
    for model in registered_models.values():
        try:
            history: type[Model] = get_history_model_for_model(model)
        except Exception:  # noqa: S112 - an m2m through model has no history manager
            continue
        tables.add(history._meta.db_table)
    return sorted(tables)


def history_guards_install(
    connection: BaseDatabaseWrapper, tables: list[str] | None = None
) -> list[str]:
    """Install the append-only trigger on each history table (all by default) that exists
    and lacks it; replace the trigger function. Returns the tables given a trigger now.
    PostgreSQL only: elsewhere nothing is done."""
    if connection.vendor != "postgresql":
        return []
    wanted = history_tables() if tables is None else tables
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.execute(FUNCTION_SQL)
        cursor.execute(
            """
            SELECT c.relname FROM pg_class c
            WHERE c.relname = ANY(%s) AND c.relkind = 'r'
              AND pg_table_is_visible(c.oid)
              AND NOT EXISTS (
                  SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid AND t.tgname = %s
              )
            ORDER BY c.relname
            """,
            [wanted, TRIGGER_NAME],
        )
        missing = [name for (name,) in cursor.fetchall()]
        for table in missing:
            cursor.execute(
                f"CREATE TRIGGER {TRIGGER_NAME} BEFORE UPDATE OR DELETE ON "
                f"{connection.ops.quote_name(table)} "
                "FOR EACH ROW EXECUTE FUNCTION history_refuse_change()"
            )
    return missing


def history_guards_on_post_migrate(*, using: str = "default", **kwargs: Any) -> None:
    """``post_migrate`` receiver (after ``migrate`` and after a test flush)."""
    history_guards_install(connections[using])


def _allow(setting: str, using: str) -> None:
    connection = connections[using]
    if connection.vendor != "postgresql":
        return
    if not connection.in_atomic_block:
        raise RuntimeError(f"{setting} is transaction-local: call it inside transaction.atomic().")
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config(%s, 'on', true)", [setting])


def history_erasure_allow(using: str = "default") -> None:
    """Until the current transaction ends, let a GDPR erasure pseudonymise history rows
    (never delete them, never change which record, when, what kind or by whom)."""
    _allow(ERASURE_SETTING, using)


def history_reencrypt_allow(using: str = "default") -> None:
    """Until the current transaction ends, let a key rotation rewrite encrypted values of
    history rows with another key (nothing else may change)."""
    _allow(REENCRYPT_SETTING, using)
