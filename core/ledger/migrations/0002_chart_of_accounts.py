from django.db import migrations

# code, name, type, role
CHART = [
    ("1000", "Cash at bank", "asset", "cash"),
    ("1010", "Processor clearing", "asset", "processor_clearing"),
    ("1100", "Accounts receivable", "asset", "accounts_receivable"),
    ("1900", "Suspense", "asset", "suspense"),
    ("2000", "Accounts payable", "liability", "accounts_payable"),
    ("2100", "Sales tax payable", "liability", "tax_payable"),
    ("2200", "Customer credit balances", "liability", "customer_credit"),
    ("3000", "Owner's equity", "equity", "equity"),
    ("4000", "Revenue", "income", "revenue"),
    ("4100", "Late-fee income", "income", "late_fee_income"),
    ("4900", "Realized FX gain/loss", "income", "fx_gain_loss"),
    ("4950", "Rounding differences", "income", "rounding"),
    ("6000", "Operating expenses", "expense", "expenses"),
    ("6100", "Processor fees", "expense", "processor_fees"),
    ("6200", "Bank fees", "expense", "bank_fees"),
    ("6300", "Bad debt expense", "expense", "bad_debt"),
]


def seed(apps, schema_editor):
    Account = apps.get_model("ledger", "Account")
    for code, name, type_, role in CHART:
        Account.objects.update_or_create(
            code=code, defaults={"name": name, "type": type_, "role": role}
        )


def unseed(apps, schema_editor):
    Account = apps.get_model("ledger", "Account")
    Account.objects.filter(code__in=[c for c, *_ in CHART], lines__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("ledger", "0001_initial")]
    operations = [migrations.RunPython(seed, unseed)]
