from django.contrib.admin.apps import AdminConfig


class BackofficeAdminConfig(AdminConfig):
    """django.contrib.admin with the OTP-enforcing site as ``admin.site``."""

    default_site = "core.admin_site.BackofficeAdminSite"

    def ready(self) -> None:
        super().ready()
        from core.admin_site import adopt_admins
        from core.admin_workspace import install_readable_values

        adopt_admins()
        install_readable_values()
