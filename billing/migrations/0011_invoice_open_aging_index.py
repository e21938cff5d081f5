"""A partial covering index for the open-items and aging queries (PostgreSQL only).

Open invoices in due-date order with every column the aging totals read, so the report over
a million open invoices is an index-only scan. SQLite (the quick-start demo) does without.
"""

from django.db import migrations

CREATE = """
CREATE INDEX IF NOT EXISTS billing_invoice_open_aging
    ON billing_invoice (due_date, id)
    INCLUDE (currency, issue_date, customer_id, total, amount_paid, amount_credited)
    WHERE status = 'open'
"""
DROP = "DROP INDEX IF EXISTS billing_invoice_open_aging"


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("billing", "0010_customer_credit_limit")]
    operations = [migrations.RunPython(forward, backward)]
