"""``Idempotency-Key`` for every POST under /api/ (ARCHITECTURE.md, RELIABILITY.md L3/L4).

The first request with a key runs inside one transaction that starts by inserting the key's
row. A concurrent duplicate blocks on that row's unique index until the first commits, then
replays the stored response: one effect, identical answers. The same key with another body
gets 422 and does nothing. Keys are scoped by credential and endpoint. Responses that say
nothing happened for a reason a retry may cure (401, 403, 429, 5xx) are not stored, and the
transaction is rolled back so the key stays free.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import IntegrityError, OperationalError, connection, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.request import RawPostDataException
from django.utils import timezone

from core.models import FormSubmission, IdempotencyRecord

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
WAIT_FOR_FIRST = "30s"
NOT_STORED = frozenset({401, 403, 408, 429})


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"code": code, "message": message, "errors": {}}, status=status)


def _scope(request: HttpRequest) -> str:
    auth = request.headers.get("Authorization", "")
    if auth:
        credential = "auth:" + hashlib.sha256(auth.encode()).hexdigest()
    elif getattr(request, "user", None) is not None and request.user.is_authenticated:
        credential = f"user:{request.user.pk}"
    else:
        credential = "anonymous"
    return hashlib.sha256(f"{credential}|POST|{request.path}".encode()).hexdigest()


def _request_hash(request: HttpRequest) -> str:
    digest = hashlib.sha256((request.content_type or "").encode() + b"\n")
    try:
        digest.update(request.body)
    except RawPostDataException:
        # A multipart body already read as a stream (the card-number guard reads uploads
        # without holding them in memory): its parsed fields and files stand for it.
        digest.update(repr(sorted(request.POST.lists())).encode())
        for name, uploads in sorted(request.FILES.lists()):
            for upload in uploads:
                digest.update(f"\n{name}={upload.name}:{upload.size}\n".encode())
                for chunk in upload.chunks():
                    digest.update(chunk)
                upload.seek(0)
    return digest.hexdigest()


def _replay(record: IdempotencyRecord, request_hash: str) -> HttpResponse:
    if record.request_hash != request_hash:
        return _error(
            422,
            "idempotency_key_reused",
            "This Idempotency-Key was already used with a different request body.",
        )
    response = HttpResponse(
        bytes(record.body), status=record.status_code, content_type=record.content_type or None
    )
    response["Idempotent-Replayed"] = "true"
    return response


class IdempotencyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        key = request.headers.get(HEADER)
        if request.method != "POST" or key is None or not request.path.startswith("/api/"):
            return self.get_response(request)
        if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
            return _error(
                400,
                "invalid_idempotency_key",
                f"{HEADER} must be 1 to {MAX_KEY_LENGTH} printable characters.",
            )
        scope = _scope(request)
        try:
            request_hash = _request_hash(request)
        except RequestDataTooBig:
            # Django refuses to hold bodies above DATA_UPLOAD_MAX_MEMORY_SIZE in memory: such a
            # request cannot be compared with a replay, so it is refused rather than run twice.
            return _error(
                413,
                "request_too_large_for_idempotency_key",
                f"A request with an {HEADER} may have at most "
                f"{settings.DATA_UPLOAD_MAX_MEMORY_SIZE // (1024 * 1024)} MB of body; send "
                "larger uploads without the header (imports are idempotent by content).",
            )
        record = IdempotencyRecord.objects.filter(scope=scope, key=key).first()
        if record is not None:
            return _replay(record, request_hash)
        try:
            with transaction.atomic():
                if connection.vendor == "postgresql":
                    with connection.cursor() as cursor:
                        cursor.execute(f"SET LOCAL lock_timeout = '{WAIT_FOR_FIRST}'")
                record = IdempotencyRecord.objects.create(
                    scope=scope,
                    key=key,
                    request_hash=request_hash,
                    status_code=0,
                    body=b"",
                    user=request.user if request.user.is_authenticated else None,
                )
                if connection.vendor == "postgresql":
                    with connection.cursor() as cursor:
                        cursor.execute("SET LOCAL lock_timeout = DEFAULT")
                response = self.get_response(request)
                if (
                    response.status_code >= 500
                    or response.status_code in NOT_STORED
                    or response.streaming
                ):
                    transaction.set_rollback(True)
                    return response
                record.status_code = response.status_code
                record.content_type = response.get("Content-Type", "")
                record.body = response.content
                record.save(update_fields=["status_code", "content_type", "body"])
                return response
        except IntegrityError:
            record = IdempotencyRecord.objects.filter(scope=scope, key=key).first()
            if record is None:
                raise
            return _replay(record, request_hash)
        except OperationalError:
            return _error(
                409,
                "idempotency_in_progress",
                "A request with this Idempotency-Key is still being processed; retry later.",
            )


def idempotency_prune(*, older_than_days: int = 30) -> int:
    """Delete stored responses, and the admin's one-time form tokens, older than the retry
    window."""
    cutoff = timezone.now() - timedelta(days=older_than_days)
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    forms, _ = FormSubmission.objects.filter(created_at__lt=cutoff).delete()
    return deleted + forms
