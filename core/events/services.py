"""Outbound events: written to the outbox with the change, sent to the endpoints by Celery.

``event_emit`` (or ``events_emit`` for many) is called inside the service's transaction: the
event and one delivery per subscribed endpoint are rows of that transaction, so nothing is
sent for a change rolled back and nothing is lost for one committed. After the commit a task
is queued to send (``core.events.tasks``); a beat task also sends what is due, so a lost
queue message only delays.

``deliveries_send`` claims due deliveries (``FOR UPDATE SKIP LOCKED``, with a lease, so any
number of workers share the work and a worker that dies lets its claims go), sends them with
a pool of threads and writes every outcome. Only the first undelivered event of an object is
claimable for an endpoint, so one object's events arrive in the order they happened (a
replay waits for nothing). A failure is tried again after 30 s, 1, 2, 4 ... minutes (at most
6 hours apart) until the event is 3 days old; an endpoint failing every try for a day is
disabled and its owner told.

Each request carries the event id (``Webhook-Id``: receivers drop repeats) and
``Webhook-Signature: t=<unix time>,v1=<hex>`` where ``v1`` is HMAC-SHA256 of ``"<t>.<body>"``
keyed with the endpoint's secret; during a rotation a second ``v1`` is made with the previous
secret until it expires.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import urllib3
from django.conf import settings
from django.core.mail import send_mail
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from core.events.models import (
    EVENT_TYPES,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    Event,
    WebhookEndpoint,
    endpoint_secret,
)
from core.exceptions import DomainError, NotFound, PermissionDeniedError

logger = logging.getLogger(__name__)

LEASE = timedelta(minutes=2)
GIVE_UP_AFTER = timedelta(days=3)
# A replay is asked for by a person watching: tried a few times, not for days.
REPLAY_TRIES = 5
FIRST_RETRY = timedelta(seconds=30)
LONGEST_WAIT = timedelta(hours=6)
CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 10.0
USER_AGENT = "backoffice-webhooks/1"


class EndpointRefused(DomainError):
    code = "endpoint_refused"


# --- writing events --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EventInput:
    type: str
    object_type: str
    object_id: Any
    data: dict[str, Any] = field(default_factory=dict)


_buffer: ContextVar[list[EventInput] | None] = ContextVar("events_buffer", default=None)


def event_emit(*, type: str, object_type: str, object_id: Any, data: dict[str, Any]) -> None:
    """Record an event of the change being made (call it inside the change's transaction).
    Inside ``events_batch`` it is written with the batch's others when the batch ends."""
    item = EventInput(type=type, object_type=object_type, object_id=object_id, data=data)
    buffered = _buffer.get()
    if buffered is not None:
        buffered.append(item)
        return
    events_emit([item])


@contextmanager
def events_batch() -> Iterator[None]:
    """Collect the events emitted inside and write them in one go at the end (bulk paths).
    An exception inside writes none of them."""
    token = _buffer.set([])
    try:
        yield
        items = _buffer.get() or []
    finally:
        _buffer.reset(token)
    events_emit(items)


@contextmanager
def events_muted() -> Iterator[None]:
    """Transitions made inside are not events: a plan worked out on copies of rows, which
    the real rows then follow (and report)."""
    token = _buffer.set([])
    try:
        yield
    finally:
        _buffer.reset(token)


def events_emit(items: Sequence[EventInput]) -> list[Event]:
    """Write the events and their deliveries to the enabled endpoints that want them."""
    if not items:
        return []
    unknown = sorted({i.type for i in items} - set(EVENT_TYPES))
    if unknown:
        raise ValueError(f"Unknown event type {unknown[0]!r}.")
    now = timezone.now()
    with transaction.atomic():
        events = Event.objects.bulk_create(
            [
                Event(
                    type=i.type,
                    object_type=i.object_type,
                    object_id=str(i.object_id),
                    data=i.data,
                    created_at=now,
                )
                for i in items
            ],
            batch_size=2000,
        )
        endpoints = list(WebhookEndpoint.objects.filter(enabled=True).only("pk", "event_types"))
        deliveries = [
            Delivery(
                event=event,
                endpoint_id=endpoint.pk,
                object_key=f"{event.object_type}:{event.object_id}"[:110],
                next_attempt_at=now,
                created_at=now,
            )
            for event in events
            for endpoint in endpoints
            if endpoint.wants(event.type)
        ]
        Delivery.objects.bulk_create(deliveries, batch_size=2000)
        if deliveries:
            _send_after_commit()
    return events


def _kick() -> None:
    from core.events.tasks import events_send

    events_send.delay()


def _send_after_commit() -> None:
    connection = transaction.get_connection()
    if any(entry[1] is _kick for entry in connection.run_on_commit):
        return  # one send per transaction is enough: it sends everything due
    # Robust: a broker that is down loses nothing, the beat task sends later.
    transaction.on_commit(_kick, robust=True)


# --- endpoints ---------------------------------------------------------------------------------


def _private_allowed() -> bool:
    return bool(getattr(settings, "WEBHOOK_ALLOW_PRIVATE_ADDRESSES", False))


def _address_refusal(host: str, port: int) -> str:
    """Why a host may not be sent to (SSRF): it resolves to a private, loopback, link-local,
    reserved or multicast address; "" when it may."""
    if _private_allowed():
        return ""
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        return f"{host} cannot be resolved"
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        if not address.is_global or address.is_multicast:
            return f"{host} points at a private or loopback address ({address})"
    return ""


def endpoint_url_refusal(url: str) -> str:
    """Why a URL cannot be an endpoint; "" when it can."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "The URL must be an http(s) address with a host."
    if settings.PRODUCTION and parts.scheme != "https":
        return "The URL must be https."
    if parts.username or parts.password:
        return "The URL may not carry a user name or password."
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return "The URL's port is not valid."
    refusal = _address_refusal(parts.hostname, port)
    return f"The URL is refused: {refusal}." if refusal else ""


def _check_url(url: str) -> str:
    if len(url) > 2000:
        raise EndpointRefused("The URL is longer than 2,000 characters.", field="url")
    refusal = endpoint_url_refusal(url)
    if refusal:
        raise EndpointRefused(refusal, field="url")
    return url.strip()


def _check_types(types: Iterable[str]) -> list[str]:
    chosen = list(dict.fromkeys(types))
    unknown = [t for t in chosen if t not in EVENT_TYPES]
    if unknown:
        raise EndpointRefused(f"Unknown event type {unknown[0]!r}.", field="event_types")
    return chosen


def _require(actor: Any, perm: str, what: str) -> None:
    if actor is not None and not actor.has_perm(perm):
        raise PermissionDeniedError(f"Your role does not allow {what}.")


def endpoint_create(
    *,
    actor: Any,
    url: str,
    description: str = "",
    event_types: Sequence[str] = (),
) -> WebhookEndpoint:
    """A new endpoint, enabled, with a new secret (shown once to whoever made it)."""
    _require(actor, "events.add_webhookendpoint", "adding webhook endpoints")
    user = actor if getattr(actor, "pk", None) else None
    return WebhookEndpoint.objects.create(
        url=_check_url(url),
        description=description[:200],
        event_types=_check_types(event_types),
        owner=user,
        created_by=user,
    )


def endpoint_update(
    *,
    actor: Any,
    endpoint_id: int,
    url: str | None = None,
    description: str | None = None,
    event_types: Sequence[str] | None = None,
    enabled: bool | None = None,
) -> WebhookEndpoint:
    """Change an endpoint. Enabling a disabled one starts its failure count afresh; events
    made while it was disabled are not sent to it (replay them if they are wanted)."""
    _require(actor, "events.change_webhookendpoint", "changing webhook endpoints")
    with transaction.atomic():
        endpoint = _locked(endpoint_id)
        if url is not None:
            endpoint.url = _check_url(url)
        if description is not None:
            endpoint.description = description[:200]
        if event_types is not None:
            endpoint.event_types = _check_types(event_types)
        if enabled is True and not endpoint.enabled:
            endpoint.enabled = True
            endpoint.disabled_at = None
            endpoint.disabled_reason = ""
            endpoint.failing_since = None
            endpoint.consecutive_failures = 0
        elif enabled is False and endpoint.enabled:
            endpoint.enabled = False
            endpoint.disabled_at = timezone.now()
            endpoint.disabled_reason = "Disabled by a person."
        endpoint.save()
    return endpoint


def endpoint_secret_rotate(
    *, actor: Any, endpoint_id: int, overlap: timedelta = timedelta(hours=24)
) -> WebhookEndpoint:
    """A new secret; the current one keeps signing beside it for ``overlap`` (at most 7 days),
    so the receiver can switch without refusing a single delivery."""
    _require(actor, "events.change_webhookendpoint", "rotating webhook secrets")
    if not timedelta(0) <= overlap <= timedelta(days=7):
        raise EndpointRefused("The overlap is from 0 to 168 hours.", field="overlap_hours")
    with transaction.atomic():
        endpoint = _locked(endpoint_id)
        endpoint.previous_secret = endpoint.secret
        endpoint.previous_secret_expires_at = timezone.now() + overlap
        endpoint.secret = endpoint_secret()
        endpoint.save()
    return endpoint


def _locked(endpoint_id: int) -> WebhookEndpoint:
    endpoint = WebhookEndpoint.objects.select_for_update().filter(pk=endpoint_id).first()
    if endpoint is None:
        raise NotFound(f"No webhook endpoint {endpoint_id}.")
    return endpoint


def event_replay(*, actor: Any, event_id: str, endpoint_id: int | None = None) -> list[Delivery]:
    """Send an event again: to one endpoint, or to every enabled one that wants its type."""
    _require(actor, "events.replay_event", "replaying events")
    event = Event.objects.filter(public_id=event_id).first()
    if event is None:
        raise NotFound(f"No event {event_id}.")
    endpoints = WebhookEndpoint.objects.filter(enabled=True)
    if endpoint_id is not None:
        endpoints = endpoints.filter(pk=endpoint_id)
        if not endpoints.exists():
            raise NotFound(f"No enabled webhook endpoint {endpoint_id}.", field="endpoint")
    with transaction.atomic():
        deliveries = Delivery.objects.bulk_create(
            [
                Delivery(
                    event=event,
                    endpoint=endpoint,
                    object_key=f"{event.object_type}:{event.object_id}"[:110],
                    replay=True,
                )
                for endpoint in endpoints
                if endpoint_id is not None or endpoint.wants(event.type)
            ]
        )
        if deliveries:
            _send_after_commit()
    return deliveries


# --- sending -----------------------------------------------------------------------------------


def event_body(event: Event) -> bytes:
    """The request body: the same bytes for every delivery of the event."""
    return json.dumps(
        {
            "id": event.public_id,
            "type": event.type,
            "created": event.created_at.isoformat(),
            "object": {"type": event.object_type, "id": event.object_id},
            "data": event.data,
        },
        cls=DjangoJSONEncoder,
        separators=(",", ":"),
    ).encode()


def signature_header(endpoint: WebhookEndpoint, body: bytes, *, at: datetime) -> str:
    timestamp = int(at.timestamp())
    signed = f"{timestamp}.".encode() + body
    secrets_ = [endpoint.secret]
    if (
        endpoint.previous_secret
        and endpoint.previous_secret_expires_at
        and endpoint.previous_secret_expires_at > at
    ):
        secrets_.append(endpoint.previous_secret)
    parts = [f"t={timestamp}"] + [
        f"v1={hmac.new(s.encode(), signed, hashlib.sha256).hexdigest()}" for s in secrets_
    ]
    return ",".join(parts)


@dataclass(slots=True)
class _Outcome:
    status_code: int | None = None
    response_ms: int | None = None
    error: str = ""

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


_pool: ThreadPoolExecutor | None = None
_http: urllib3.PoolManager | None = None
_pool_lock = threading.Lock()


def _clients() -> tuple[ThreadPoolExecutor, urllib3.PoolManager]:
    """The threads that send and their keep-alive connections (urllib3, thread-safe)."""
    global _pool, _http
    with _pool_lock:
        if _pool is None or _http is None:
            workers = int(getattr(settings, "WEBHOOK_SEND_THREADS", 8))
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="webhooks")
            _http = urllib3.PoolManager(
                num_pools=64,
                maxsize=workers,
                block=False,
                retries=False,
                headers={"User-Agent": USER_AGENT},
            )
        return _pool, _http


def _post(delivery: Delivery, body: bytes, refusal: str) -> _Outcome:
    if refusal:
        return _Outcome(error=f"not sent: {refusal}"[:300])
    endpoint = delivery.endpoint
    headers = {
        "Content-Type": "application/json",
        "Webhook-Id": delivery.event.public_id,
        "Webhook-Signature": signature_header(endpoint, body, at=timezone.now()),
    }
    started = time.perf_counter()
    try:
        response = _clients()[1].request(
            "POST",
            endpoint.url,
            body=body,
            headers=headers,
            timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT),
            redirect=False,
            preload_content=True,
        )
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        elapsed = int((time.perf_counter() - started) * 1000)
        return _Outcome(response_ms=elapsed, error=f"{type(exc).__name__}: {exc}"[:300])
    elapsed = int((time.perf_counter() - started) * 1000)
    status = int(response.status)
    error = "" if 200 <= status < 300 else f"HTTP {status}"
    return _Outcome(status_code=status, response_ms=elapsed, error=error)


@dataclass(frozen=True, slots=True)
class SendResult:
    delivered: int
    failed: int
    gave_up: int

    @property
    def sent(self) -> int:
        return self.delivered + self.failed


def _claim(now: datetime, limit: int) -> list[int]:
    earlier = Delivery.objects.filter(
        endpoint=OuterRef("endpoint"),
        object_key=OuterRef("object_key"),
        status=DeliveryStatus.PENDING,
        replay=False,
        pk__lt=OuterRef("pk"),
    )
    with transaction.atomic():
        ids = list(
            Delivery.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now, endpoint__enabled=True)
            .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
            .filter(Q(replay=True) | ~Exists(earlier))
            .order_by("pk")
            .values_list("pk", flat=True)[:limit]
        )
        if ids:
            Delivery.objects.filter(pk__in=ids).update(lease_until=now + LEASE)
    return ids


def _wait(attempts: int) -> timedelta:
    wait: timedelta = FIRST_RETRY * (2 ** max(attempts - 1, 0))
    return min(wait, LONGEST_WAIT)


def deliveries_send(*, limit: int = 500, now: datetime | None = None) -> SendResult:
    """Send one batch of due deliveries and record each outcome."""
    now = now or timezone.now()
    ids = _claim(now, limit)
    if not ids:
        return SendResult(0, 0, 0)
    rows = list(
        Delivery.objects.filter(pk__in=ids).select_related("event", "endpoint").order_by("pk")
    )
    refusals: dict[str, str] = {}
    for row in rows:
        parts = urlsplit(row.endpoint.url)
        host = parts.hostname or ""
        if host not in refusals:
            refusals[host] = endpoint_url_refusal(row.endpoint.url)
    bodies = {row.event_id: event_body(row.event) for row in rows}
    outcomes = list(
        _clients()[0].map(
            lambda row: _post(
                row, bodies[row.event_id], refusals[urlsplit(row.endpoint.url).hostname or ""]
            ),
            rows,
        )
    )
    return _record(rows, outcomes, now)


def _record(rows: list[Delivery], outcomes: list[_Outcome], now: datetime) -> SendResult:
    delivered = failed = gave_up = 0
    per_endpoint: dict[int, list[bool]] = {}
    for row, outcome in zip(rows, outcomes, strict=True):
        row.attempts += 1
        row.lease_until = None
        row.last_status_code = outcome.status_code
        row.last_response_ms = outcome.response_ms
        row.last_error = outcome.error
        per_endpoint.setdefault(row.endpoint_id, []).append(outcome.delivered)
        if outcome.delivered:
            row.status = DeliveryStatus.DELIVERED
            row.delivered_at = now
            delivered += 1
        elif (
            row.attempts >= REPLAY_TRIES
            if row.replay
            else now - row.event.created_at >= GIVE_UP_AFTER
        ):
            row.status = DeliveryStatus.FAILED
            gave_up += 1
        else:
            row.next_attempt_at = now + _wait(row.attempts)
            failed += 1
    with transaction.atomic():
        _outcomes_write(rows)
        DeliveryAttempt.objects.bulk_create(
            [
                DeliveryAttempt(
                    delivery=row,
                    at=now,
                    status_code=outcome.status_code,
                    response_ms=outcome.response_ms,
                    error=outcome.error,
                )
                for row, outcome in zip(rows, outcomes, strict=True)
            ],
            batch_size=1000,
        )
        for endpoint_id, results in per_endpoint.items():
            _endpoint_health(endpoint_id, results, now)
    return SendResult(delivered=delivered, failed=failed, gave_up=gave_up)


_OUTCOME_FIELDS = (
    "status",
    "attempts",
    "next_attempt_at",
    "delivered_at",
    "last_status_code",
    "last_response_ms",
    "last_error",
    "lease_until",
)


def _outcomes_write(rows: list[Delivery]) -> None:
    """Each delivery's outcome, one UPDATE for the batch on PostgreSQL (a VALUES list joined
    by id: Django's ``bulk_update`` builds a CASE per field and row, most of a batch's time)."""
    if connection.vendor != "postgresql":
        Delivery.objects.bulk_update(rows, list(_OUTCOME_FIELDS), batch_size=500)
        return
    row_sql = (
        "(%s::bigint, %s::varchar, %s::integer, %s::timestamptz, %s::timestamptz, "
        "%s::smallint, %s::integer, %s::varchar)"
    )
    params: list[Any] = []
    for row in rows:
        params += [
            row.pk,
            row.status,
            row.attempts,
            row.next_attempt_at,
            row.delivered_at,
            row.last_status_code,
            row.last_response_ms,
            row.last_error,
        ]
    table = connection.ops.quote_name(Delivery._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS d SET status = v.status, attempts = v.attempts, "  # noqa: S608  # nosec B608  # model table; values bound
            "next_attempt_at = v.next_attempt_at, delivered_at = v.delivered_at, "
            "last_status_code = v.code, last_response_ms = v.ms, last_error = v.error, "
            "lease_until = NULL "
            f"FROM (VALUES {', '.join([row_sql] * len(rows))}) "
            "AS v(id, status, attempts, next_attempt_at, delivered_at, code, ms, error) "
            "WHERE d.id = v.id",
            params,
        )


def _endpoint_health(endpoint_id: int, results: list[bool], now: datetime) -> None:
    if any(results):
        WebhookEndpoint.objects.filter(pk=endpoint_id).exclude(
            consecutive_failures=0, failing_since=None
        ).update(consecutive_failures=0, failing_since=None)
        return
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint_id)
    endpoint.consecutive_failures += len(results)
    endpoint.failing_since = endpoint.failing_since or now
    limit = int(getattr(settings, "WEBHOOK_DISABLE_AFTER_FAILURES", 50))
    period = timedelta(hours=float(getattr(settings, "WEBHOOK_DISABLE_AFTER_HOURS", 24)))
    fields = ["consecutive_failures", "failing_since"]
    if (
        endpoint.enabled
        and endpoint.consecutive_failures >= limit
        and now - endpoint.failing_since >= period
    ):
        endpoint.enabled = False
        endpoint.disabled_at = now
        endpoint.disabled_reason = (
            f"Every delivery failed for {period} ({endpoint.consecutive_failures} tries)."
        )[:300]
        fields += ["enabled", "disabled_at", "disabled_reason"]
        transaction.on_commit(lambda: _tell_owner(endpoint_id))
    endpoint.save(update_fields=fields)


def _tell_owner(endpoint_id: int) -> None:
    endpoint = WebhookEndpoint.objects.select_related("owner", "created_by").get(pk=endpoint_id)
    person = endpoint.owner or endpoint.created_by
    to = [person.email] if person is not None and person.email else []
    if not to:
        logger.error("Webhook endpoint %s was disabled and has no owner to tell.", endpoint_id)
        return
    last = (
        Delivery.objects.filter(endpoint_id=endpoint_id).exclude(last_error="").order_by("-pk")
    ).first()
    send_mail(
        subject=f"Webhook endpoint disabled: {endpoint}",
        message=(
            f"The webhook endpoint {endpoint.url} was disabled on "
            f"{endpoint.disabled_at:%Y-%m-%d %H:%M} UTC: {endpoint.disabled_reason}\n"
            f"Last error: {last.last_error if last else 'none recorded'}.\n\n"
            "Events made while it is disabled are not sent to it. Once the receiver works, "
            "enable it again (admin: Outbound events > Webhook endpoints, or PATCH "
            "/api/webhook-endpoints/{id} with enabled=true) and replay the events you need."
        ),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=to,
        fail_silently=True,
    )


def deliveries_send_due(*, budget_seconds: float = 50.0, limit: int = 500) -> SendResult:
    """Send batches until nothing is due or the time budget is spent (one task's work)."""
    deadline = time.monotonic() + budget_seconds
    totals = [0, 0, 0]
    while time.monotonic() < deadline:
        result = deliveries_send(limit=limit)
        totals = [
            totals[0] + result.delivered,
            totals[1] + result.failed,
            totals[2] + result.gave_up,
        ]
        if result.sent + result.gave_up == 0:
            break
    return SendResult(*totals)
