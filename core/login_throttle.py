"""An address trying passwords across many usernames (issue 15 hole 7). django-axes locks a
username from an address after ``AXES_FAILURE_LIMIT`` bad passwords; one address spraying a
password over many usernames never trips that. Every failed sign-in is therefore also counted
per address (the ``user_login_failed`` signal, in the cache), and an address with
``LOGIN_FAILURES_PER_IP`` failures within ``LOGIN_FAILURE_WINDOW`` may not try again until the
window ends (429 on the sign-in POST). The limit is higher than axes' per-username one: an
office behind one address has several people who mistype."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.urls import reverse

from core.api.throttling import AddressFailures

_failures = AddressFailures("login-failures", lambda: settings.LOGIN_FAILURE_WINDOW)


@receiver(user_login_failed, dispatch_uid="core.login_throttle")
def _count_failure(
    sender: Any, credentials: Any, request: HttpRequest | None = None, **_: Any
) -> None:
    if request is not None:
        _failures.add(request)


class LoginAddressLockMiddleware:
    """429 for a sign-in from an address over its failures (before the password is checked)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if (
            request.method == "POST"
            and request.path == reverse("admin:login")
            and _failures.count(request) >= settings.LOGIN_FAILURES_PER_IP
        ):
            minutes = _failures.seconds() // 60
            response = HttpResponse(
                "Too many failed sign-ins from this address. "
                f"Try again in {minutes} minutes, or ask an administrator.",
                status=429,
                content_type="text/plain; charset=utf-8",
            )
            response["Retry-After"] = str(_failures.seconds())
            return response
        return self.get_response(request)
