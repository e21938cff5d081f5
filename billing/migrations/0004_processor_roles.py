from django.db import migrations

from core.roles import Role, create_all_permissions, grant

VIEW = [
    "billing.view_paymentmethod",
    "billing.view_processorattempt",
    "billing.view_webhookevent",
]
HISTORY = [
    "billing.view_historicalpaymentmethod",
    "billing.view_historicalprocessorattempt",
]
CLERK = [
    *VIEW,
    "billing.add_paymentmethod",
    "billing.delete_paymentmethod",
    "billing.charge_invoice",
]

GRANTS = {
    Role.FINANCE_ADMIN: [*CLERK, *HISTORY],
    Role.CONTROLLER: [*VIEW, *HISTORY],
    Role.AR_CLERK: CLERK,
    Role.AUDITOR: [*VIEW, *HISTORY],
    Role.INTEGRATION: CLERK,
}


def forward(apps, schema_editor):
    create_all_permissions(apps)
    for role, perms in GRANTS.items():
        grant(apps, role, perms)


class Migration(migrations.Migration):
    # Also after 0004_subscription_roles, so that billing keeps a single leaf migration.
    dependencies = [
        ("billing", "0003_processors"),
        ("core", "0002_roles"),
    ]
    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
