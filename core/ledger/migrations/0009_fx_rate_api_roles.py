"""GET /api/ledger/fx-rates is read by every staff role: approvers, the one role without
FX rates, may read them too (issue 11). Recording stays with finance_admin, controller and
integrations, who hold core.add_fxrate since core 0002."""

from django.db import migrations

from core.roles import Role, create_all_permissions, grant


def forward(apps, schema_editor):
    create_all_permissions(apps)
    grant(apps, Role.APPROVER, ["core.view_fxrate"])


class Migration(migrations.Migration):
    dependencies = [("core", "0002_roles"), ("ledger", "0008_account_period_locks")]
    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
