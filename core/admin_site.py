"""The admin requires a verified second factor for every page (django-otp).

The default admin site is an ``OTPAdminSite``: its login asks for the password and a code,
and ``has_permission`` is false until the session is verified, so a staff user without a
device reaches no admin page. The code field takes either an authenticator (TOTP) code or a
recovery code; the device is chosen from the shape of the code, so nobody has to pick one.
"""

from __future__ import annotations

from typing import Any

from django_otp.admin import OTPAdminAuthenticationForm, OTPAdminSite
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice


class OTPLoginForm(OTPAdminAuthenticationForm):
    def _chosen_device(self, user: Any) -> Any:
        device = super()._chosen_device(user)
        if device is not None:
            return device
        token = (self.cleaned_data.get("otp_token") or "").strip()
        model = TOTPDevice if token.isdigit() and len(token) in (6, 8) else StaticDevice
        device = model.objects.filter(user=user, confirmed=True).order_by("pk").first()
        if device is None:
            # No device of that kind: check the code against one the user has, so the answer
            # is "invalid code" rather than a device picker nobody asked for.
            other = StaticDevice if model is TOTPDevice else TOTPDevice
            device = other.objects.filter(user=user, confirmed=True).order_by("pk").first()
        return device


class BackofficeAdminSite(OTPAdminSite):
    site_header = "Back-office"
    site_title = "Back-office"
    index_title = "Finance back-office"
    login_form = OTPLoginForm
    login_template = "admin/otp_login.html"

    def __init__(self, name: str = "admin") -> None:
        super().__init__(name)
