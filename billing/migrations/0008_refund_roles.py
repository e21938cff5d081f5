from django.db import migrations

from core.roles import Role, create_all_permissions, grant

VIEW = ["billing.view_refund", "billing.view_refundallocation"]

GRANTS = {
    Role.FINANCE_ADMIN: [*VIEW, "billing.add_refund", "billing.view_historicalrefund"],
    Role.CONTROLLER: [*VIEW, "billing.add_refund", "billing.view_historicalrefund"],
    Role.AR_CLERK: VIEW,
    Role.AUDITOR: [*VIEW, "billing.view_historicalrefund"],
    Role.INTEGRATION: [*VIEW, "billing.add_refund"],
}


def forward(apps, schema_editor):
    create_all_permissions(apps)
    for role, perms in GRANTS.items():
        grant(apps, role, perms)


class Migration(migrations.Migration):
    dependencies = [("billing", "0007_refunds")]
    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
