from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CoreConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from core import login_throttle  # noqa: F401 - connects its signal receiver
        from core.history_guard import history_guards_on_post_migrate

        # Every history table append-only on PostgreSQL, those added later too (SOX).
        post_migrate.connect(
            history_guards_on_post_migrate, sender=self, dispatch_uid="core.history_guards"
        )
