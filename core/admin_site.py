"""The admin requires a verified second factor for every page (django-otp).

The default admin site is an ``OTPAdminSite``: its login asks for the password and a code,
and ``has_permission`` is false until the session is verified, so a staff user without a
device reaches no admin page. The code field takes either an authenticator (TOTP) code or a
recovery code; the device is chosen from the shape of the code, so nobody has to pick one.
Only the devices of ``core.otp`` (key encrypted, codes hashed) are ever chosen.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest
from django_otp.admin import OTPAdminAuthenticationForm, OTPAdminSite
from unfold.sites import UnfoldAdminSite
from unfold.widgets import BASE_INPUT_CLASSES

from core.otp import AuthenticatorDevice, RecoveryCodeDevice


class OTPLoginForm(OTPAdminAuthenticationForm):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["otp_token"].label = "Authenticator or recovery code"
        attrs = {
            "username": {"autofocus": "", "autocomplete": "username"},
            "password": {"autocomplete": "current-password"},
            "otp_token": {
                "autocomplete": "one-time-code",
                "autocapitalize": "off",
                "spellcheck": "false",
            },
        }
        for name, extra in attrs.items():
            self.fields[name].required = True
            self.fields[name].widget.attrs.update(extra, **{"class": " ".join(BASE_INPUT_CLASSES)})

    def clean(self) -> dict[str, Any]:
        try:
            return super().clean()
        finally:
            # django-otp turns on rendering the password back into the page after a wrong
            # code (so it need not be typed again): never, it would sit in the HTML.
            self.fields["password"].widget.render_value = False

    def _chosen_device(self, user: Any) -> Any:
        device = super()._chosen_device(user)
        if isinstance(device, AuthenticatorDevice | RecoveryCodeDevice):
            return device
        token = (self.cleaned_data.get("otp_token") or "").strip()
        model: type[AuthenticatorDevice | RecoveryCodeDevice] = (
            AuthenticatorDevice if token.isdigit() and len(token) in (6, 8) else RecoveryCodeDevice
        )
        device = model.objects.filter(user=user, confirmed=True).order_by("pk").first()
        if device is None:
            # No device of that kind: check the code against one the user has, so the answer
            # is "invalid code" rather than a device picker nobody asked for.
            other = RecoveryCodeDevice if model is AuthenticatorDevice else AuthenticatorDevice
            device = other.objects.filter(user=user, confirmed=True).order_by("pk").first()
        return device


class BackofficeAdminSite(OTPAdminSite, UnfoldAdminSite):
    """The OTP-enforcing site in the django-unfold workspace theme (sidebar and navigation
    from ``settings.UNFOLD``, built by ``core.admin_nav``)."""

    site_header = "Back-office"
    site_title = "Back-office"
    index_title = "Finance back-office"
    login_form = OTPLoginForm
    login_template = "admin/otp_login.html"

    def __init__(self, name: str = "admin") -> None:
        super().__init__(name)

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[Any]:
        """Built once per request and label: the page, unfold's sidebar and its navigation
        each ask for it, and each build checks every registered model's permissions and
        reverses its URLs. Each caller gets its own copy (some add to it)."""
        built = request.__dict__.setdefault("_backoffice_app_lists", {})
        if app_label not in built:
            built[app_label] = super().get_app_list(request, app_label)
        return copy.deepcopy(built[app_label])

    def extra_urls(self) -> list[Any]:
        """Workspace pages that are no model's (unfold's ``get_urls`` mounts them), as the
        apps registered them with ``register_admin_pages``."""
        return [url for build in _ADMIN_PAGES for url in build(self)]


# Builders of pages an app adds to the admin outside any model (aging screens, the credit
# page): registered by the app's admin module, so core imports no domain app.
_ADMIN_PAGES: list[Callable[[Any], list[Any]]] = []


def register_admin_pages(build: Callable[[Any], list[Any]]) -> Callable[[Any], list[Any]]:
    """Mount the URL patterns ``build(site)`` returns in the workspace admin."""
    if build not in _ADMIN_PAGES:
        _ADMIN_PAGES.append(build)
    return build


# The apps whose lists are the finance workspace's own: export, amount search, history.
WORKSPACE_APPS = frozenset(
    {"core", "ledger", "billing", "receivables", "payables", "reconciliation", "reporting"}
)


def adopt_admins() -> None:
    """Bring every registered admin into the workspace, once all are registered.

    Admins of other packages (axes, knox, celery beat) are mixed with unfold's ``ModelAdmin``
    (the theme); the finance apps' admins with ``WorkspaceAdminMixin`` (export of the
    filtered list, search by exact amount, readable history). Each is registered again as its
    own class with the mixin first, so its permissions, lists and forms stay as written.
    """
    from django.contrib import admin
    from unfold.admin import ModelAdmin

    from core.admin_workspace import WorkspaceAdminMixin

    for model, model_admin in list(admin.site._registry.items()):
        bases: tuple[type, ...] = ()
        if model._meta.app_label in WORKSPACE_APPS and not isinstance(
            model_admin, WorkspaceAdminMixin
        ):
            bases = (WorkspaceAdminMixin, type(model_admin))
        if not isinstance(model_admin, ModelAdmin):
            bases = (*(bases or (type(model_admin),)), ModelAdmin)
        if not bases:
            continue
        adopted = type(
            type(model_admin).__name__, bases, {"__module__": type(model_admin).__module__}
        )
        admin.site.unregister(model)
        admin.site.register(model, adopted)
