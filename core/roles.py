"""The role groups of ARCHITECTURE.md and the permissions each one holds.

Roles are Django groups created by data migrations; each app's migration grants its own
permissions with ``grant`` so a role's rights live next to the models they cover.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import models


class Role(models.TextChoices):
    FINANCE_ADMIN = "finance_admin", "Finance administrator"
    AR_CLERK = "ar_clerk", "Accounts-receivable clerk"
    AP_CLERK = "ap_clerk", "Accounts-payable clerk"
    APPROVER = "approver", "Approver"
    CONTROLLER = "controller", "Controller"
    AUDITOR = "auditor", "Auditor (read-only)"
    INTEGRATION = "integration", "Integration (API only)"


# Roles whose members sign in to the admin (is_staff); integrations use API tokens only.
STAFF_ROLES = frozenset(Role) - {Role.INTEGRATION}


def create_all_permissions(apps: Any) -> None:
    """Make sure every model's permissions exist (Django only creates them after migrate)."""
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0, apps=apps)
        app_config.models_module = None


def grant(apps: Any, role: str, perms: Iterable[str]) -> None:
    """Give ``role`` the permissions named ``app_label.codename`` (for data migrations)."""
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name=role)
    for perm in perms:
        app_label, codename = perm.split(".", 1)
        permission = Permission.objects.get(content_type__app_label=app_label, codename=codename)
        group.permissions.add(permission)
