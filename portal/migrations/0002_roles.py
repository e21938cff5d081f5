from django.db import migrations

from core.roles import Role, create_all_permissions, grant

VIEW = [
    "portal.view_portallink",
    "portal.view_portalsession",
    "portal.view_portalaccess",
    "portal.view_disputemessage",
]
ACT = ["portal.send_portallink", "portal.revoke_portal"]

GRANTS = {
    Role.FINANCE_ADMIN: [*VIEW, *ACT],
    Role.AR_CLERK: [*VIEW, *ACT],
    Role.CONTROLLER: VIEW,
    Role.AUDITOR: VIEW,
    Role.INTEGRATION: ACT,
}


def forward(apps, schema_editor):
    create_all_permissions(apps)
    for role, perms in GRANTS.items():
        grant(apps, role, perms)


class Migration(migrations.Migration):
    dependencies = [
        ("portal", "0001_initial"),
        ("core", "0002_roles"),
    ]
    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
