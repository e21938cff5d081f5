from django.db import migrations

from core.roles import Role, create_all_permissions, grant

VIEW = [
    "billing.view_customer",
    "billing.view_invoice",
    "billing.view_invoiceline",
    "billing.view_payment",
    "billing.view_paymentallocation",
    "billing.view_taxrate",
]
HISTORY = [
    "billing.view_historicalcustomer",
    "billing.view_historicalinvoice",
    "billing.view_historicalpayment",
    "billing.view_historicaltaxrate",
]
CLERK = [
    *VIEW,
    "billing.add_customer",
    "billing.change_customer",
    "billing.add_invoice",
    "billing.change_invoice",
    "billing.issue_invoice",
    "billing.record_payment",
]

GRANTS = {
    Role.FINANCE_ADMIN: [
        *CLERK,
        *HISTORY,
        "billing.void_invoice",
        "billing.write_off_invoice",
        "billing.add_taxrate",
        "billing.change_taxrate",
    ],
    Role.CONTROLLER: [*VIEW, *HISTORY, "billing.void_invoice", "billing.write_off_invoice"],
    Role.AR_CLERK: CLERK,
    Role.AUDITOR: [*VIEW, *HISTORY],
    Role.INTEGRATION: CLERK,
}


def forward(apps, schema_editor):
    create_all_permissions(apps)
    for role, perms in GRANTS.items():
        grant(apps, role, perms)


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial"), ("core", "0002_roles")]
    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
