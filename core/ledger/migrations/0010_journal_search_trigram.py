"""Journal search by text over a million entries: trigram indexes (pg_trgm) on the
expressions the admin's search compares, UPPER(column::text) LIKE UPPER('%term%'), so a
search reads the index instead of every row. PostgreSQL only; nothing on SQLite (the
quick-start database, where lists are small)."""

from django.db import migrations

COLUMNS = ("description", "source", "idempotency_key")


def forward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for column in COLUMNS:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS ledger_journalentry_{column}_trgm "
            f'ON ledger_journalentry USING gin (UPPER("{column}"::text) gin_trgm_ops)'
        )


def backward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for column in COLUMNS:
        schema_editor.execute(f"DROP INDEX IF EXISTS ledger_journalentry_{column}_trgm")


class Migration(migrations.Migration):
    dependencies = [("ledger", "0009_fx_rate_api_roles")]
    operations = [migrations.RunPython(forward, backward)]
