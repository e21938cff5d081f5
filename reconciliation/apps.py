from django.apps import AppConfig


class ReconciliationConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "reconciliation"

    def ready(self) -> None:
        from core.demo import register_demo_seeder
        from reconciliation.demo import reconciliation_demo_seed

        register_demo_seeder("reconciliation", reconciliation_demo_seed)
