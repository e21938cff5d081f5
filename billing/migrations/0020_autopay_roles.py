from django.db import migrations

from core.roles import Role, create_all_permissions, grant

VIEW = ["billing.view_invoiceautopay", "billing.view_cardexpiryreminder"]
HISTORY = ["billing.view_historicalinvoiceautopay"]

GRANTS = {
    Role.FINANCE_ADMIN: [*VIEW, *HISTORY],
    Role.CONTROLLER: [*VIEW, *HISTORY],
    Role.AR_CLERK: VIEW,
    Role.AUDITOR: [*VIEW, *HISTORY],
    Role.INTEGRATION: VIEW,
}


def forward(apps, schema_editor):
    create_all_permissions(apps)
    for role, perms in GRANTS.items():
        grant(apps, role, perms)


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0019_autopay"),
        ("core", "0002_roles"),
    ]
    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
