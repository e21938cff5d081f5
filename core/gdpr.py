"""GDPR requests, the parts every app shares: the log of exports and erasures, plain JSON of
a record and of its history rows (secrets masked as the product shows them), and the export
of what is held about a user.

Exports and erasures are logged in the admin log (``django.contrib.admin.models.LogEntry``,
the audit trail the compliance reports read: ``reporting.compliance.personal_data_table``
lists them, and the users report shows those about a user): who, whom, when, what and why.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.db.models.fields.files import FieldFile
from django.utils import timezone
from djmoney.models.fields import CurrencyField
from djmoney.money import Money

from core.encryption import EncryptedTextField, mask_tail
from core.exceptions import Conflict, DomainError, NotFound, PermissionDeniedError

# Every log entry of a GDPR request starts with this; the compliance report selects on it.
LOG_PREFIX = "GDPR "
EXPORT = "export"
ERASURE = "erasure"
# Stands in for erased personal text (names, notes) so a reader sees it was erased.
ERASED = "[erased]"


class ErasureRefused(Conflict):
    """Open business with the person: settle or close it first (HTTP 409)."""

    code = "erasure_open_items"


class ErasureReasonMissing(DomainError):
    code = "reason_required"


def erasure_reason_clean(reason: str) -> str:
    """The reason an erasure is made, required (it is logged with the actor)."""
    reason = (reason or "").strip()
    if not reason:
        raise ErasureReasonMissing("Say why the data is erased.", field="reason")
    return reason[:300]


def erasure_change_reason(reason: str) -> str:
    """The history row's change reason of an erasure (the master-data report shows it):
    django-simple-history keeps 100 characters; the admin log keeps the whole reason."""
    text = f"{LOG_PREFIX}{ERASURE}: {reason}"
    return text if len(text) <= 100 else text[:99] + "\u2026"


def open_items_refuse(open_items: dict[str, int], *, subject: str) -> None:
    """Refuse an erasure while ``open_items`` (kind -> count) has any: a 409 naming them."""
    found = {kind: count for kind, count in open_items.items() if count}
    if not found:
        return
    listed = ", ".join(f"{kind.replace('_', ' ')} ({count})" for kind, count in found.items())
    raise ErasureRefused(
        f"{subject} cannot be erased while open items remain: {listed}. Settle or close them "
        "first; invoices, bills and ledger entries are kept for their legal retention anyway.",
        open_items=",".join(found),
    )


def require(actor: Any, perm: str, what: str) -> None:
    if actor is None or not actor.has_perm(perm):
        raise PermissionDeniedError(f"Your role does not allow {what}.")


# --------------------------------------------------------------------------- plain JSON


def plain(value: Any) -> Any:
    """A stored value as JSON: money as {amount, currency}, decimals and dates as text."""
    if isinstance(value, Money):
        return {"amount": f"{value.amount:f}", "currency": str(value.currency)}
    if isinstance(value, Decimal):
        return f"{value:f}"
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, FieldFile):
        return value.name or ""
    if isinstance(value, bytes | memoryview):
        return None
    return value


def record_data(
    obj: models.Model, *, exclude: Iterable[str] = (), only: Iterable[str] | None = None
) -> dict[str, Any]:
    """A record's own columns as JSON (foreign keys as ids, money as {amount, currency});
    encrypted values masked (``••••1234``), never in clear."""
    skip = set(exclude)
    wanted = set(only) if only is not None else None
    names = {field.name for field in obj._meta.concrete_fields}
    data: dict[str, Any] = {}
    for field in obj._meta.concrete_fields:
        if field.name in skip or (wanted is not None and field.name not in wanted):
            continue
        if isinstance(field, CurrencyField) and field.name.removesuffix("_currency") in names:
            continue  # django-money's currency column: the amount carries it
        if isinstance(field, EncryptedTextField):
            data[field.name] = mask_tail(getattr(obj, field.attname) or "")
        elif field.is_relation:
            data[field.attname] = getattr(obj, field.attname)
        else:
            data[field.name] = plain(getattr(obj, field.name))
    return data


def history_data(
    model: type[models.Model], object_ids: Iterable[Any], *, exclude: Iterable[str] = ()
) -> list[dict[str, Any]]:
    """The history rows of ``model``'s records ``object_ids``, oldest first, each with when,
    what kind of change, by whom and why, and the fields as they were (encrypted ones
    masked)."""
    history = model.history.model  # type: ignore[attr-defined]
    rows = (
        history.objects.filter(id__in=list(object_ids))
        .select_related("history_user")
        .order_by("history_date", "history_id")
    )
    meta = {"history_id", "history_date", "history_type", "history_user", "history_change_reason"}
    out = []
    for row in rows:
        item = {
            "history_id": row.history_id,
            "history_date": plain(row.history_date),
            "history_type": {"+": "created", "~": "changed", "-": "deleted"}.get(
                row.history_type, row.history_type
            ),
            "history_user": row.history_user.get_username() if row.history_user else None,
            "history_change_reason": row.history_change_reason or "",
        }
        item.update(record_data(row, exclude={*meta, *exclude}))
        out.append(item)
    return out


# ------------------------------------------------------------------------------ the log


def personal_data_log(
    *, actor: Any, target: models.Model, action: str, reason: str = ""
) -> LogEntry | None:
    """Log a GDPR export or erasure of ``target`` by ``actor`` in the admin log (the audit
    trail the compliance reports read). The system (``actor=None``) is not a person and
    makes no entry."""
    if actor is None or not getattr(actor, "pk", None):
        return None
    message = f"{LOG_PREFIX}{action}"
    if reason:
        message += f": {reason}"
    return LogEntry.objects.create(
        user_id=actor.pk,
        content_type=ContentType.objects.get_for_model(type(target), for_concrete_model=False),
        object_id=str(target.pk),
        object_repr=str(target)[:200],
        action_flag=CHANGE,
        change_message=message,
        action_time=timezone.now(),
    )


def personal_data_log_list(
    *, start: dt.datetime | None = None, end: dt.datetime | None = None
) -> models.QuerySet[LogEntry]:
    """The logged GDPR exports and erasures (of a period), oldest first."""
    qs = LogEntry.objects.filter(change_message__startswith=LOG_PREFIX)
    if start is not None:
        qs = qs.filter(action_time__gte=start)
    if end is not None:
        qs = qs.filter(action_time__lt=end)
    return qs.select_related("user", "content_type").order_by("action_time", "pk")


# ------------------------------------------------------------------------------- users


def user_export(*, actor: Any, user_id: int) -> dict[str, Any]:
    """Everything held about a user (account, roles, second-factor devices without their
    keys, API tokens without their digests, sign-in records, the admin log by and about
    them, and how many history rows they authored per model), logged as an export."""
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog
    from django_otp import devices_for_user
    from knox.models import AuthToken

    # The user administrators (finance_admin, superusers), who see and change users anyway.
    require(actor, "auth.change_user", "exporting a user's personal data")
    user = User.objects.filter(pk=user_id).prefetch_related("groups").first()
    if user is None:
        raise NotFound(f"No user {user_id}.")
    username = user.get_username()
    authored: dict[str, int] = {}
    for history in _history_models():
        count = history._default_manager.filter(history_user_id=user.pk).count()
        if count:
            authored[history._meta.label] = count
    user_type = ContentType.objects.get_for_model(User)
    admin_log = LogEntry.objects.filter(user_id=user.pk) | LogEntry.objects.filter(
        content_type=user_type, object_id=str(user.pk)
    )
    data = {
        "subject": {"type": "user", "id": user.pk},
        "exported_at": plain(timezone.now()),
        "exported_by": actor.get_username(),
        "user": record_data(user, exclude={"password"}),
        "roles": sorted(g.name for g in user.groups.all()),
        "permissions": sorted(user.get_user_permissions()),
        # Second-factor devices by kind and name: never a key or a code.
        "devices": [
            {"kind": d._meta.verbose_name, "name": d.name, "confirmed": d.confirmed}
            for d in devices_for_user(user, confirmed=None)
        ],
        "api_tokens": [
            {
                "token_key": t.token_key,
                "created": plain(t.created),
                "expiry": plain(t.expiry),
            }
            for t in AuthToken.objects.filter(user=user).order_by("created")
        ],
        "sign_in_attempts": [
            record_data(
                a, only={"attempt_time", "ip_address", "user_agent", "failures_since_start"}
            )
            for a in AccessAttempt.objects.filter(username=username).order_by("attempt_time")
        ],
        "sign_in_failures": [
            record_data(a, only={"attempt_time", "ip_address", "user_agent", "locked_out"})
            for a in AccessFailureLog.objects.filter(username=username).order_by("attempt_time")
        ],
        "sign_ins": [
            record_data(a, only={"attempt_time", "logout_time", "ip_address", "user_agent"})
            for a in AccessLog.objects.filter(username=username).order_by("attempt_time")
        ],
        "admin_log": [
            {
                "at": plain(e.action_time),
                "by": User.objects.get(pk=e.user_id).get_username() if e.user_id else None,
                "object": f"{_model_name(e.content_type_id)} {e.object_repr}",
                "action": {1: "added", 2: "changed", 3: "deleted"}.get(e.action_flag, ""),
                "message": e.get_change_message(),
            }
            for e in admin_log.select_related("user", "content_type").order_by("action_time")
        ],
        "history_rows_authored": authored,
    }
    with transaction.atomic():
        personal_data_log(actor=actor, target=user, action=EXPORT)
    return data


def _model_name(content_type_id: int | None) -> str:
    if content_type_id is None:
        return ""
    return str(ContentType.objects.get_for_id(content_type_id).model)


def _history_models() -> list[type[models.Model]]:
    from simple_history.models import registered_models
    from simple_history.utils import get_history_model_for_model

    found = []
    for model in registered_models.values():
        try:
            found.append(get_history_model_for_model(model))
        except Exception:  # noqa: S112 - an m2m through model has no history manager
            continue
    return found
