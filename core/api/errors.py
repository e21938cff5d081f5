"""One JSON error shape for every 4xx: ``{"code", "message", "errors"}``.

``errors`` maps a field name to its messages (``non_field_errors`` for the rest), so a client
can show each problem beside its input. Domain errors carry their own stable code.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.exceptions import DomainError

# Seconds a client waits after a rate limit of the business rules (too many checkout or
# portal requests) that names no time of its own.
DOMAIN_RETRY_AFTER = 60


def _flatten(detail: Any) -> Any:
    if isinstance(detail, dict):
        return {str(k): _flatten(v) for k, v in detail.items()}
    if isinstance(detail, list):
        return [_flatten(v) for v in detail]
    return str(detail)


def _as_field_errors(detail: Any) -> dict[str, Any]:
    if isinstance(detail, dict):
        return _flatten(detail)
    if isinstance(detail, list):
        return {"non_field_errors": _flatten(detail)}
    return {"non_field_errors": [str(detail)]}


def _detail(value: Any, *, nested: bool = False) -> Any:
    """A refusal's detail as JSON: lists and objects kept (a close's red items), text,
    flags and null kept inside them; any other value (a Decimal, a date) as its text."""
    if isinstance(value, list | tuple):
        return [_detail(item, nested=True) for item in value]
    if isinstance(value, dict):
        return {str(k): _detail(v, nested=True) for k, v in value.items()}
    if nested and (value is None or isinstance(value, bool)):
        return value
    return str(value)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DomainError):
        body: dict[str, Any] = {
            "code": exc.code,
            "message": exc.message,
            "errors": {exc.field: [exc.message]} if exc.field else {},
        }
        if exc.details:
            body["details"] = {k: _detail(v) for k, v in exc.details.items()}
        refusal = Response(body, status=exc.status_code)
        if exc.status_code == status.HTTP_429_TOO_MANY_REQUESTS:
            # Every 429 says when to come back, as the throttles' do.
            refusal["Retry-After"] = str(getattr(exc, "retry_after", DOMAIN_RETRY_AFTER))
        return refusal
    if isinstance(exc, Http404 | ObjectDoesNotExist):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    if isinstance(exc, exceptions.ValidationError):
        body = {
            "code": "invalid",
            "message": "The request has invalid fields.",
            "errors": _as_field_errors(exc.detail),
        }
    else:
        detail = exc.detail
        codes = exc.get_codes()
        body = {
            "code": codes if isinstance(codes, str) else exc.default_code,
            "message": str(detail) if not isinstance(detail, dict | list) else exc.default_detail,
            "errors": {} if isinstance(detail, str) else _as_field_errors(detail),
        }
    response.data = body
    return response


def json_not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(
        {"code": "not_found", "message": f"No such resource: {request.path}", "errors": {}},
        status=status.HTTP_404_NOT_FOUND,
    )
