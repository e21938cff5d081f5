"""Keep the balance checks on the index whatever PostgreSQL knew of the table when it first
planned them.

PL/pgSQL caches a generic plan per session; one made while the ledger was nearly empty scans
every journal line for each entry checked, so commits get slower as the ledger grows (seen
in the billing run benchmark until autoanalyze caught up). With sequential scans off inside
these functions the lookups by entry id always use the index on ``entry_id``.
"""

from django.db import migrations

FUNCTIONS = ("ledger_entry_check_balance()", "ledger_line_entry_open()")


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for function in FUNCTIONS:
            schema_editor.execute(f"ALTER FUNCTION {function} SET enable_seqscan = off")


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for function in FUNCTIONS:
            schema_editor.execute(f"ALTER FUNCTION {function} RESET enable_seqscan")


class Migration(migrations.Migration):
    dependencies = [("ledger", "0005_functional_only_lines")]
    operations = [migrations.RunPython(forward, backward)]
