from django.apps import AppConfig


class PortalConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "portal"
    verbose_name = "Customer portal"

    def ready(self) -> None:
        from portal import gdpr

        # An erased customer's links and sessions end; what identifies them goes.
        gdpr.register()
