from django.db import migrations

from core.roles import Role, create_all_permissions, grant

MODELS = (
    "dunningpolicy",
    "dunningstep",
    "customerdunningpolicy",
    "collectionevent",
    "collectionpause",
    "latefee",
    "collectionsworklistitem",
)
VIEW = [f"receivables.view_{m}" for m in MODELS]
# Pauses and promises to pay, and running the collections run.
CLERK = [
    "receivables.add_collectionpause",
    "receivables.change_collectionpause",
    "receivables.run_collections",
]
# Policies, their steps and customer assignments are configuration: finance_admin only.
POLICIES = [
    f"receivables.{verb}_{m}"
    for m in ("dunningpolicy", "dunningstep", "customerdunningpolicy")
    for verb in ("add", "change", "delete")
]
WAIVE = ["receivables.waive_latefee"]

GRANTS = {
    Role.FINANCE_ADMIN: [*VIEW, *CLERK, *POLICIES, *WAIVE],
    Role.AR_CLERK: [*VIEW, *CLERK],
    Role.CONTROLLER: [*VIEW, *WAIVE],
    Role.AUDITOR: VIEW,
}


def forward(apps, schema_editor):
    create_all_permissions(apps)
    for role, perms in GRANTS.items():
        grant(apps, role, perms)


class Migration(migrations.Migration):
    dependencies = [("receivables", "0002_default_policy"), ("core", "0003_ledger_check_roles")]
    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
