"""Month-end close (issue 16): the controller closes a month, a finance admin reopens one
(with a reason); whoever reads the ledger reads the closes and their history."""

from django.db import migrations

from core.roles import Role, create_all_permissions, grant

READ = ["ledger.view_monthclose", "ledger.view_historicalmonthclose"]


def forward(apps, schema_editor):
    create_all_permissions(apps)
    grant(apps, Role.FINANCE_ADMIN, [*READ, "ledger.reopen_month"])
    grant(apps, Role.CONTROLLER, [*READ, "ledger.close_month"])
    grant(apps, Role.AUDITOR, READ)


class Migration(migrations.Migration):
    dependencies = [("core", "0002_roles"), ("ledger", "0015_month_close")]
    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
