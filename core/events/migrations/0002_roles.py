from django.db import migrations

from core.roles import Role, create_all_permissions, grant

READ = [
    "events.view_event",
    "events.view_webhookendpoint",
    "events.view_delivery",
    "events.view_deliveryattempt",
]
MANAGE = [
    "events.add_webhookendpoint",
    "events.change_webhookendpoint",
    "events.replay_event",
    "events.view_historicalwebhookendpoint",
]

GRANTS = {
    Role.FINANCE_ADMIN: [*READ, *MANAGE],
    Role.CONTROLLER: READ,
    Role.AUDITOR: [*READ, "events.view_historicalwebhookendpoint"],
    # Integrations poll events and manage the endpoints they receive them on.
    Role.INTEGRATION: [*READ, *MANAGE],
}


def forward(apps, schema_editor):
    create_all_permissions(apps)
    for role, perms in GRANTS.items():
        grant(apps, role, perms)


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0001_initial"),
        ("core", "0002_roles"),
    ]
    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
