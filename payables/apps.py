from django.apps import AppConfig


class PayablesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "payables"

    def ready(self) -> None:
        from core.ledger.checks import register_check
        from payables.selectors import ap_functional_check, ap_subledger_check

        register_check("payables.ap_subledger", ap_subledger_check)
        register_check("payables.ap_functional", ap_functional_check)
        from payables import close_checks

        close_checks.register()

        from payables.events import connect as events_connect

        events_connect()
        from core.demo import register_demo_seeder
        from payables.demo import payables_demo_seed

        register_demo_seeder("payables", payables_demo_seed)
