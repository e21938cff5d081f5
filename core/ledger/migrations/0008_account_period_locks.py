"""Period locks of one account (a bank account's reconciliation signed off through a date).

``ledger_post_entry`` (migration 0003) learns them: with ``checked`` it also refuses an entry
dated on or before a lock in force of any of its lines' accounts (the account's lock in
every currency, or in the line's currency), and the whole-books lock
it reads is the newest row without an account.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


FUNCTION = r"""
CREATE OR REPLACE FUNCTION ledger_post_entry(
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
                            WHERE account_id IS NULL
                            ORDER BY created_at DESC, id DESC LIMIT 1)
        OR EXISTS (SELECT 1
                   FROM (SELECT DISTINCT * FROM unnest(p_account_id, p_currency)) AS a(id, cur)
                   CROSS JOIN LATERAL (VALUES (''::varchar), (a.cur)) AS s(cur)
                   CROSS JOIN LATERAL (SELECT lock_date FROM ledger_periodlock p
                                       WHERE p.account_id = a.id AND p.currency = s.cur
                                       ORDER BY created_at DESC, id DESC LIMIT 1) AS l
                   WHERE p_entry_date <= l.lock_date)
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


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FUNCTION, params=None)


class Migration(migrations.Migration):

    dependencies = [
        ('ledger', '0007_more_roles'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='periodlock',
            name='account',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='period_locks', to='ledger.account'),
        ),
        migrations.AddField(
            model_name='periodlock',
            name='currency',
            field=models.CharField(blank=True, default='', max_length=3),
        ),
        migrations.AddIndex(
            model_name='periodlock',
            index=models.Index(fields=['account', 'currency', '-created_at', '-id'], name='period_lock_account'),
        ),
        migrations.AddConstraint(
            model_name='periodlock',
            constraint=models.CheckConstraint(condition=models.Q(('currency', ''), ('account__isnull', False), _connector='OR'), name='period_lock_currency_needs_account'),
        ),
        # Backwards the 0003 function stays; it ignores the account column, which goes.
        migrations.RunPython(forward, migrations.RunPython.noop),
    ]
