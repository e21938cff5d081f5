from django.db import migrations

from core.roles import Role, create_all_permissions, grant

# The workspace's marketing-spend list is for those who read financial reports in the admin
# (integrations read it through the API).
VIEWERS = (Role.FINANCE_ADMIN, Role.CONTROLLER, Role.AUDITOR)


def forward(apps, schema_editor):
    create_all_permissions(apps)
    for role in VIEWERS:
        grant(apps, role, ["reporting.view_marketingspend"])


class Migration(migrations.Migration):
    dependencies = [
        ("reporting", "0004_marketing_spend"),
    ]

    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
