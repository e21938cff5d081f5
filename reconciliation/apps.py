from django.apps import AppConfig


class ReconciliationConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "reconciliation"

    def ready(self) -> None:
        from core.ledger.ownership import register_control_accounts
        from reconciliation.selectors import bank_ledger_account_ids

        register_control_accounts(
            "reconciliation.bank_accounts",
            bank_ledger_account_ids,
            role="cash",
            what="the ledger account of a bank account under reconciliation",
        )
        from reconciliation import close_checks

        close_checks.register()

        from core.demo import register_demo_seeder
        from reconciliation.demo import reconciliation_demo_seed

        register_demo_seeder("reconciliation", reconciliation_demo_seed)
