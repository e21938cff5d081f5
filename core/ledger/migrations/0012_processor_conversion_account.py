"""The processor currency conversion account (role ``processor_conversion``): a PayPal
settlement that converted a payment from one currency into another posts both legs of the
conversion to it (reconciliation.services_payouts)."""

from django.db import migrations, models

CODE, NAME, TYPE, ROLE = "1015", "Processor currency conversion", "asset", "processor_conversion"


def seed(apps, schema_editor):
    Account = apps.get_model("ledger", "Account")
    if Account.objects.filter(role=ROLE).exists():
        return
    Account.objects.get_or_create(code=CODE, defaults={"name": NAME, "type": TYPE, "role": ROLE})


def unseed(apps, schema_editor):
    Account = apps.get_model("ledger", "Account")
    Account.objects.filter(code=CODE, role=ROLE, lines__isnull=True).delete()


ROLE_CHOICES = [
    ("cash", "Bank and cash"),
    ("processor_clearing", "Processor clearing"),
    ("processor_conversion", "Processor currency conversion"),
    ("accounts_receivable", "Accounts receivable"),
    ("accounts_payable", "Accounts payable"),
    ("inventory", "Inventory"),
    ("purchase_discounts", "Early-payment discounts taken"),
    ("revenue", "Revenue"),
    ("tax_payable", "Tax payable"),
    ("late_fee_income", "Late-fee income"),
    ("bad_debt", "Bad debt expense"),
    ("fx_gain_loss", "Realized FX gain/loss"),
    ("processor_fees", "Processor fees"),
    ("bank_fees", "Bank fees"),
    ("customer_credit", "Customer credit balances"),
    ("suspense", "Suspense"),
    ("expenses", "Operating expenses"),
    ("equity", "Owner's equity"),
    ("rounding", "Rounding differences"),
]


class Migration(migrations.Migration):
    dependencies = [("ledger", "0011_account_day_totals")]

    operations = [
        migrations.AlterField(
            model_name="account",
            name="role",
            field=models.CharField(
                blank=True, choices=ROLE_CHOICES, max_length=32, null=True, unique=True
            ),
        ),
        migrations.AlterField(
            model_name="historicalaccount",
            name="role",
            field=models.CharField(
                blank=True, choices=ROLE_CHOICES, db_index=True, max_length=32, null=True
            ),
        ),
        migrations.RunPython(seed, unseed),
    ]
