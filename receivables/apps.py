from django.apps import AppConfig


class ReceivablesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "receivables"

    def ready(self) -> None:
        from receivables.events import connect as events_connect

        events_connect()
        from receivables import gdpr

        # Open plans and disputes block a customer's erasure; their text is erased with it.
        gdpr.register()
        from core.demo import register_demo_seeder
        from receivables.demo import receivables_demo_seed

        # Back-dated invoices: seeded before the documents dated today.
        register_demo_seeder("receivables", receivables_demo_seed, position=0)
