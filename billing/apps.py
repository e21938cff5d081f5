from django.apps import AppConfig


class BillingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "billing"

    def ready(self) -> None:
        from billing.checks import ar_functional_check, ar_subledger_check, customer_credit_check
        from core.ledger.checks import register_check

        register_check("billing.ar_subledger", ar_subledger_check)
        register_check("billing.ar_functional", ar_functional_check)
        register_check("billing.customer_credit", customer_credit_check)
        from billing import close_checks

        close_checks.register()

        from billing.events import connect as events_connect

        events_connect()
        from billing.demo import billing_demo_seed
        from core.demo import register_demo_seeder

        register_demo_seeder("billing", billing_demo_seed)
