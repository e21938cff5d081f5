from django.apps import AppConfig


class ReportingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "reporting"

    def ready(self) -> None:
        # Demo data (quick start only): marketing spend beside the demo customers' channels.
        from core.demo import register_demo_seeder
        from reporting.demo import reporting_demo_seed

        register_demo_seeder("reporting", reporting_demo_seed)
