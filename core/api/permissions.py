"""API access: a verified second factor for people, and the permissions each view declares.

Every view states ``required_permissions``: a mapping from HTTP method to the Django
permissions (granted through the role groups) needed to call it. A view that declares
nothing is closed, so a forgotten declaration fails safe.
"""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from core.api.scopes import token_allows

PUBLIC = "__public__"


def _token_authenticated(request: Request) -> bool:
    return request.auth is not None


class IsVerifiedUser(BasePermission):
    """Authenticated, with a verified OTP device when signed in by session (people); API
    tokens are the credential of integrations and stand on their own."""

    message = "Authentication with a verified second factor is required."

    def has_permission(self, request: Request, view: Any) -> bool:
        if getattr(view, "required_permissions", None) == PUBLIC:
            return True
        user = request.user
        if not user or not user.is_authenticated or not user.is_active:
            return False
        if _token_authenticated(request):
            return True
        return bool(getattr(user, "is_verified", lambda: False)())


class HasRequiredPermissions(IsVerifiedUser):
    message = "Your role does not allow this operation."

    def has_permission(self, request: Request, view: Any) -> bool:
        declared = getattr(view, "required_permissions", None)
        if declared == PUBLIC:
            return True
        if not super().has_permission(request, view):
            self.message = IsVerifiedUser.message
            return False
        if not isinstance(declared, dict):
            return False
        method = "GET" if request.method in ("HEAD", "OPTIONS") else str(request.method)
        perms = declared.get(method)
        if perms is None:
            return False
        if _token_authenticated(request):
            allowed, needed = token_allows(request.auth, view, method)
            if not allowed:
                self.message = f"This API token's scopes do not include {needed}."
                return False
        return request.user.has_perms(perms)
