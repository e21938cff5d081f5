"""API rate limits (issue 15 hole 4): per token, per address, and stricter on failed
authentication. Counts live in the default cache (Redis in production: every process and
machine counts together). Limits are settings (``API_THROTTLE_RATES``,
``API_AUTH_FAILURES_PER_IP``, ``API_AUTH_FAILURE_WINDOW``), read on each request. A refusal is
429 with ``Retry-After``.

- ``TokenBurstThrottle`` and ``TokenThrottle``: the calls of one token (an integration's knox
  token; a staff session by its user), a short burst and a minute's worth.
- ``AddressThrottle``: every call from one address, whoever makes it (anonymous included).
- ``AuthFailureThrottleMiddleware``: an address that failed authentication (an unknown or
  revoked token, no credentials) ``API_AUTH_FAILURES_PER_IP`` times within the window is
  refused every /api/ call until the window ends, before any token is looked up.

Every /api/ answer is also marked ``Cache-Control: no-store`` (``NoStoreMiddleware``): what a
finance API answers is for its caller only, never for a shared or browser cache.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.cache import patch_cache_control
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle

API_PREFIX = "/api/"


class _SettingsRateThrottle(SimpleRateThrottle):
    """A rate from ``settings.API_THROTTLE_RATES[scope]``, read per request (so a deployment,
    or a test, may change it without a restart of the class)."""

    def __init__(self) -> None:
        """Nothing yet: the rate is read in ``allow_request``."""

    def allow_request(self, request: Any, view: Any) -> bool:
        self.rate = settings.API_THROTTLE_RATES.get(self.scope or "")
        if not self.rate:
            return True
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)


def _token_ident(request: Any) -> str | None:
    auth = getattr(request, "auth", None)
    token_key = getattr(auth, "token_key", None)
    if token_key:
        return f"token:{token_key}"
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    return None


class TokenBurstThrottle(_SettingsRateThrottle):
    scope = "token_burst"

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        ident = _token_ident(request)
        return None if ident is None else self.cache_format % {"scope": self.scope, "ident": ident}


class TokenThrottle(TokenBurstThrottle):
    scope = "token"


class AddressThrottle(_SettingsRateThrottle):
    scope = "address"

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class AddressFailures:
    """Failures of one kind counted per address in the cache for a window (the API's failed
    authentications, the sign-in's bad passwords): ``count`` and ``add``."""

    def __init__(self, kind: str, window: Callable[[], timedelta]) -> None:
        self.kind = kind
        self.window = window

    def _key(self, request: HttpRequest) -> str:
        # DRF's address of the caller (X-Forwarded-For behind NUM_PROXIES proxies): it reads
        # META only, which a Django request has.
        ident = BaseThrottle().get_ident(request)  # type: ignore[arg-type]
        return f"{self.kind}:{ident}"

    def seconds(self) -> int:
        return int(self.window().total_seconds())

    def count(self, request: HttpRequest) -> int:
        return int(cache.get(self._key(request)) or 0)

    def add(self, request: HttpRequest) -> None:
        key, window = self._key(request), self.seconds()
        if not cache.add(key, 1, timeout=window):
            try:
                cache.incr(key)
            except ValueError:  # expired between the two calls
                cache.add(key, 1, timeout=window)


_auth_failures = AddressFailures("api-auth-failures", lambda: settings.API_AUTH_FAILURE_WINDOW)


def _too_many(wait: int) -> JsonResponse:
    response = JsonResponse(
        {
            "code": "throttled",
            "message": (
                f"Too many failed authentications from this address; try again in {wait} seconds."
            ),
            "errors": {},
        },
        status=429,
    )
    response["Retry-After"] = str(wait)
    return response


class AuthFailureThrottleMiddleware:
    """Refuses, 429, the /api/ calls of an address that failed authentication too often in
    the window; counts each 401 it answers."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(API_PREFIX):
            return self.get_response(request)
        if _auth_failures.count(request) >= settings.API_AUTH_FAILURES_PER_IP:
            return _too_many(_auth_failures.seconds())
        response = self.get_response(request)
        if response.status_code == 401:
            _auth_failures.add(request)
        return response


class NoStoreMiddleware:
    """``Cache-Control: no-store`` on every /api/ answer."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.path.startswith(API_PREFIX):
            patch_cache_control(response, no_store=True, private=True)
        return response
