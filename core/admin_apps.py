from django.contrib.admin.apps import AdminConfig


class BackofficeAdminConfig(AdminConfig):
    """django.contrib.admin with the OTP-enforcing site as ``admin.site``."""

    default_site = "core.admin_site.BackofficeAdminSite"
