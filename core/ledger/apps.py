from django.apps import AppConfig


class LedgerConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "core.ledger"
    label = "ledger"
    verbose_name = "General ledger"
