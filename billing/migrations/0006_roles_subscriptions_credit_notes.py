from django.db import migrations

from core.roles import Role, create_all_permissions, grant

VIEW = [
    "billing.view_product",
    "billing.view_price",
    "billing.view_subscription",
    "billing.view_subscriptionitem",
    "billing.view_usageevent",
    "billing.view_pendingitem",
    "billing.view_creditnote",
    "billing.view_creditnoteline",
]
HISTORY = [
    "billing.view_historicalproduct",
    "billing.view_historicalprice",
    "billing.view_historicalsubscription",
    "billing.view_historicalsubscriptionitem",
    "billing.view_historicalcreditnote",
]
CATALOG = [
    "billing.add_product",
    "billing.change_product",
    "billing.add_price",
    "billing.change_price",
]
SUBSCRIPTIONS = [
    "billing.add_subscription",
    "billing.change_subscription",
    "billing.add_usageevent",
]

CREDIT = ["billing.add_creditnote"]

GRANTS = {
    Role.FINANCE_ADMIN: [*VIEW, *HISTORY, *CATALOG, *SUBSCRIPTIONS, *CREDIT, "billing.run_billing"],
    Role.CONTROLLER: [*VIEW, *HISTORY, *CREDIT, "billing.run_billing"],
    Role.AR_CLERK: [*VIEW, *SUBSCRIPTIONS],
    Role.AUDITOR: [*VIEW, *HISTORY],
    Role.INTEGRATION: [*VIEW, *SUBSCRIPTIONS, *CREDIT],
}


def forward(apps, schema_editor):
    create_all_permissions(apps)
    for role, perms in GRANTS.items():
        grant(apps, role, perms)


class Migration(migrations.Migration):
    dependencies = [("billing", "0005_catalog_subscriptions_credit_notes")]
    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
