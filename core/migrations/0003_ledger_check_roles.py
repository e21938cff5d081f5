from django.db import migrations

from core.roles import Role, create_all_permissions, grant


def forward(apps, schema_editor):
    create_all_permissions(apps)
    for role in (Role.FINANCE_ADMIN, Role.CONTROLLER, Role.AUDITOR):
        grant(apps, role, ["ledger.view_ledgercheckrun"])


class Migration(migrations.Migration):
    dependencies = [("core", "0002_roles"), ("ledger", "0004_ledger_check_run")]
    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
