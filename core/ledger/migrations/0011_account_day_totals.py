"""Daily totals per account and currency, kept by a trigger on the journal lines and filled
from the lines already posted (see core/ledger/day_totals.py)."""

import django.db.models.deletion
from decimal import Decimal
from django.db import migrations, models


def _triggers_and_backfill(apps, schema_editor):
    from core.ledger import day_totals

    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(day_totals.PG_TRIGGER, params=None)
    elif schema_editor.connection.vendor == "sqlite":
        schema_editor.execute(day_totals.SQLITE_TRIGGER, params=None)
    day_totals.day_totals_rebuild()


def _drop_triggers(apps, schema_editor):
    from core.ledger import day_totals

    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(day_totals.PG_TRIGGER_DROP, params=None)
    elif schema_editor.connection.vendor == "sqlite":
        schema_editor.execute(day_totals.SQLITE_TRIGGER_DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("ledger", "0010_journal_search_trigram"),
    ]

    operations = [
        migrations.CreateModel(
            name="AccountDayTotal",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("currency", models.CharField(max_length=3)),
                ("day", models.DateField()),
                (
                    "debit",
                    models.DecimalField(decimal_places=4, default=Decimal("0"), max_digits=28),
                ),
                (
                    "credit",
                    models.DecimalField(decimal_places=4, default=Decimal("0"), max_digits=28),
                ),
                (
                    "functional_debit",
                    models.DecimalField(decimal_places=4, default=Decimal("0"), max_digits=28),
                ),
                (
                    "functional_credit",
                    models.DecimalField(decimal_places=4, default=Decimal("0"), max_digits=28),
                ),
                (
                    "account",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="ledger.account",
                    ),
                ),
            ],
            options={
                "indexes": [
                    models.Index(
                        fields=["account", "currency", "day"],
                        include=("debit", "credit", "functional_debit", "functional_credit"),
                        name="ledger_daytotal_acct_day",
                    ),
                    models.Index(
                        fields=["day", "account", "currency"],
                        include=("debit", "credit", "functional_debit", "functional_credit"),
                        name="ledger_daytotal_day",
                    ),
                ],
            },
        ),
        migrations.RunPython(_triggers_and_backfill, _drop_triggers),
    ]
