from django.db import migrations

from core.roles import Role, create_all_permissions, grant

VIEW = [
    "billing.view_invoiceautopay",
    "billing.view_cardexpiryreminder",
    "billing.view_invoicelink",
]
REVOKE = ["billing.revoke_invoicelink"]
HISTORY = ["billing.view_historicalinvoiceautopay", "billing.view_historicalinvoicelink"]

GRANTS = {
    Role.FINANCE_ADMIN: [*VIEW, *HISTORY, *REVOKE],
    Role.CONTROLLER: [*VIEW, *HISTORY],
    Role.AR_CLERK: [*VIEW, *REVOKE],
    Role.AUDITOR: [*VIEW, *HISTORY],
    Role.INTEGRATION: VIEW,
}


def forward(apps, schema_editor):
    create_all_permissions(apps)
    for role, perms in GRANTS.items():
        grant(apps, role, perms)


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0020_invoice_link"),
        ("core", "0002_roles"),
    ]
    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
