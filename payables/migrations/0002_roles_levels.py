from decimal import Decimal

from django.db import migrations

from core.roles import Role, create_all_permissions, grant

MODELS = (
    "vendor",
    "vendorbankchange",
    "vendordocument",
    "approvallevel",
    "approval",
    "approvaldelegation",
    "purchaseorder",
    "purchaseorderline",
    "receipt",
    "receiptline",
    "bill",
    "billline",
    "expensecategory",
    "matchtolerance",
    "expensereport",
    "expenseline",
    "paymentrun",
    "paymentrunitem",
)
HISTORY = (
    "vendor",
    "vendorbankchange",
    "purchaseorder",
    "bill",
    "expensereport",
    "paymentrun",
    "approval",
    "approvallevel",
)
VIEW = [f"payables.view_{m}" for m in MODELS] + [
    f"payables.view_historical{m}" for m in HISTORY
]
# Anyone on the staff may ask to spend or claim expenses.
REQUEST = [
    "payables.add_purchaseorder",
    "payables.change_purchaseorder",
    "payables.add_expensereport",
    "payables.change_expensereport",
]
CLERK = [
    *REQUEST,
    "payables.add_vendor",
    "payables.change_vendor",
    "payables.add_vendorbankchange",
    "payables.add_vendordocument",
    "payables.order_purchaseorder",
    "payables.add_receipt",
    "payables.add_bill",
    "payables.change_bill",
    "payables.add_paymentrun",
    "payables.change_paymentrun",
]
APPROVE = [
    "payables.approve_purchaseorder",
    "payables.approve_bill",
    "payables.approve_expensereport",
    "payables.approve_paymentrun",
    "payables.approve_vendorbankchange",
    "payables.activate_vendor",
]
CONFIG = [
    f"payables.{verb}_{m}"
    for m in ("approvallevel", "approvaldelegation", "expensecategory", "matchtolerance")
    for verb in ("add", "change", "delete")
]

GRANTS = {
    Role.FINANCE_ADMIN: [*VIEW, *CLERK, *APPROVE, *CONFIG],
    Role.AP_CLERK: [*VIEW, *CLERK],
    Role.APPROVER: [*VIEW, *REQUEST, *APPROVE, "payables.add_approvaldelegation"],
    Role.CONTROLLER: [*VIEW, *REQUEST, *APPROVE, "payables.add_approvaldelegation"],
    Role.AR_CLERK: ["payables.add_expensereport", "payables.change_expensereport"],
    Role.AUDITOR: VIEW,
    Role.INTEGRATION: [
        "payables.view_vendor",
        "payables.view_purchaseorder",
        "payables.view_bill",
        "payables.view_receipt",
        "payables.add_vendor",
        "payables.add_purchaseorder",
        "payables.change_purchaseorder",
        "payables.add_receipt",
        "payables.add_bill",
        "payables.change_bill",
    ],
}

# Shipped approval levels (functional currency); finance_admin edits them in the admin.
LEVELS = [
    ("purchase_order", "1000.00", "approver"),
    ("purchase_order", "10000.00", "controller"),
    ("purchase_order", "100000.00", "finance_admin"),
    # Bills, expense reports and payment runs always need someone other than their maker.
    ("bill", "0", "approver"),
    ("bill", "10000.00", "controller"),
    ("bill", "100000.00", "finance_admin"),
    ("expense_report", "0", "approver"),
    ("expense_report", "5000.00", "controller"),
    ("payment_run", "0", "approver"),
    ("payment_run", "100000.00", "controller"),
    ("bank_change", "0", "approver"),
]

CATEGORIES = [
    ("6400", "Travel", "2500.00"),
    ("6410", "Meals and entertainment", "150.00"),
    ("6420", "Software and subscriptions", "1000.00"),
    ("6430", "Office supplies", "500.00"),
]


def forward(apps, schema_editor):
    create_all_permissions(apps)
    for role, perms in GRANTS.items():
        grant(apps, role, perms)
    ApprovalLevel = apps.get_model("payables", "ApprovalLevel")
    for kind, amount, role in LEVELS:
        ApprovalLevel.objects.get_or_create(
            kind=kind, role=role, defaults={"min_amount": Decimal(amount)}
        )
    apps.get_model("payables", "MatchTolerance").objects.get_or_create(pk=1)
    Account = apps.get_model("ledger", "Account")
    ExpenseCategory = apps.get_model("payables", "ExpenseCategory")
    for code, name, limit in CATEGORIES:
        account, _ = Account.objects.get_or_create(
            code=code, defaults={"name": name, "type": "expense"}
        )
        ExpenseCategory.objects.get_or_create(
            name=name,
            defaults={"account": account, "limit_amount": Decimal(limit)},
        )


class Migration(migrations.Migration):
    dependencies = [
        ("payables", "0001_initial"),
        ("ledger", "0007_more_roles"),
        ("core", "0003_ledger_check_roles"),
    ]
    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
