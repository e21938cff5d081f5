"""The customers' payment timing as a materialized view (PostgreSQL only).

One row per customer: the days late of the invoices payments paid in full (distinct, sorted)
and how many invoices each (``reporting.projection.payment_timing``'s definition, read for
today's projection instead of aggregating every allocation on each dashboard refresh); and
row 0, the whole portfolio's, there even when nothing has been paid. Made empty (not yet
refreshed: the projection computes the timing itself until then) and refreshed every hour
by ``reporting.payment_timing_refresh``. SQLite (the quick start) does without. PostgreSQL
refuses to change the type of a column a view reads: a migration that alters one of the
columns below drops the view first and makes it again after.
"""

from django.db import migrations

CREATE = """
CREATE MATERIALIZED VIEW IF NOT EXISTS reporting_payment_timing AS
WITH late AS (
    SELECT inv.customer_id, paid.last - inv.due_date AS days
      FROM (SELECT a.invoice_id, sum(a.amount) AS amount, max(p.received_date) AS last
              FROM billing_paymentallocation a
              JOIN billing_payment p ON p.id = a.payment_id
             WHERE p.status IN ('succeeded', 'refunded')
             GROUP BY a.invoice_id) AS paid
      JOIN billing_invoice inv ON inv.id = paid.invoice_id
     WHERE inv.due_date IS NOT NULL
       AND paid.amount >= inv.total - inv.amount_credited
), counted AS (
    SELECT customer_id, days, count(*)::integer AS n FROM late GROUP BY customer_id, days
)
SELECT customer_id,
       array_agg(days ORDER BY days) AS days,
       array_agg(n ORDER BY days) AS counts,
       now() AS refreshed_at
  FROM counted
 GROUP BY customer_id
UNION ALL
SELECT 0,
       coalesce(array_agg(days ORDER BY days), '{}'),
       coalesce(array_agg(n ORDER BY days), '{}'),
       now()
  FROM (SELECT days, sum(n)::integer AS n FROM counted GROUP BY days) AS portfolio
WITH NO DATA
"""
# A unique index lets the refresh run CONCURRENTLY: readers are never blocked by it.
INDEX = """
CREATE UNIQUE INDEX IF NOT EXISTS reporting_payment_timing_customer
    ON reporting_payment_timing (customer_id)
"""
DROP = "DROP MATERIALIZED VIEW IF EXISTS reporting_payment_timing"


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)
        schema_editor.execute(INDEX)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [
        ("reporting", "0005_marketing_spend_viewers"),
        ("billing", "0016_invoice_closed_unpaid"),
    ]
    operations = [migrations.RunPython(forward, backward)]
