"""Manual journal entries above the threshold need a second person (issue 15 hole 5):
controllers and finance admins approve them; whoever reads the ledger reads them too, and an
integration reads the ones it submitted to learn their outcome."""

from django.db import migrations

from core.roles import Role, create_all_permissions, grant

READ = ["ledger.view_manualentry"]
HISTORY = ["ledger.view_historicalmanualentry"]
DECIDE = ["ledger.approve_manualentry"]


def forward(apps, schema_editor):
    create_all_permissions(apps)
    grant(apps, Role.FINANCE_ADMIN, [*READ, *HISTORY, *DECIDE])
    grant(apps, Role.CONTROLLER, [*READ, *HISTORY, *DECIDE])
    grant(apps, Role.AUDITOR, [*READ, *HISTORY])
    grant(apps, Role.INTEGRATION, READ)


class Migration(migrations.Migration):
    dependencies = [("core", "0002_roles"), ("ledger", "0013_manual_entry")]
    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
