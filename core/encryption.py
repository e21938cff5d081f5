"""Field encryption at rest with the environment's FIELD_ENCRYPTION_KEY (Fernet, rotatable).

Used for bank account numbers and tax ids in every app; values are only ever shown masked.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, models, transaction

ENCRYPTED_PREFIX = "fernet:"


@lru_cache(maxsize=4)
def _fernet(keys: str) -> MultiFernet:
    parts = [k.strip() for k in keys.split(",") if k.strip()]
    if not parts:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEY is empty.")
    try:
        return MultiFernet([Fernet(k) for k in parts])
    except ValueError:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEY must be urlsafe base64 32-byte keys, comma-separated."
        ) from None


def field_cipher() -> MultiFernet:
    """The keys of settings.FIELD_ENCRYPTION_KEY: the first encrypts, every one decrypts."""
    return _fernet(str(getattr(settings, "FIELD_ENCRYPTION_KEY", "")))


class EncryptedTextField(models.TextField):
    """Text stored as a Fernet token (``fernet:<token>``); decrypted when read.

    Rotation: put the new key first in FIELD_ENCRYPTION_KEY, keep the old ones after it,
    then re-encrypt every row (``manage.py rotate_encryption_keys``: every encrypted field of
    every model, history rows included) and drop the old keys once ``--check`` says none is
    needed.
    """

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        return self.to_python(value)

    def to_python(self, value: Any) -> Any:
        if not isinstance(value, str) or not value.startswith(ENCRYPTED_PREFIX):
            return value
        token = value.removeprefix(ENCRYPTED_PREFIX).encode()
        try:
            return field_cipher().decrypt(token).decode()
        except InvalidToken:
            raise ImproperlyConfigured(
                f"{self.model.__name__}.{self.name} cannot be decrypted with any key of "
                "FIELD_ENCRYPTION_KEY."
            ) from None

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value is None or value == "" or str(value).startswith(ENCRYPTED_PREFIX):
            return value
        return ENCRYPTED_PREFIX + field_cipher().encrypt(str(value).encode()).decode()


MASK = "\u2022\u2022\u2022\u2022"


def mask_tail(value: str, visible: int = 4) -> str:
    """``••••1234``: the last ``visible`` characters of a sensitive value, never more."""
    value = (value or "").replace(" ", "")
    return f"{MASK}{value[-visible:]}" if value else ""


# --- key rotation -------------------------------------------------------------------------------

REENCRYPT_BATCH = 500


def encrypted_fields() -> list[tuple[type[models.Model], list[str]]]:
    """Every model with encrypted fields (history models included), and those fields."""
    found = []
    for model in apps.get_models():
        names = [f.name for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]
        if names:
            found.append((model, names))
    return found


def _label(model: type[models.Model], name: str) -> str:
    return f"{model._meta.label}.{name}"


def fields_reencrypt() -> dict[str, int]:
    """Re-encrypt every encrypted value with the first FIELD_ENCRYPTION_KEY (after a key
    rotation), in batches, each row under its lock. Returns the values rewritten per field.
    What a value says is unchanged (history rows too)."""
    from core.history_guard import history_reencrypt_allow

    counts: dict[str, int] = {}
    for model, names in encrypted_fields():
        manager = model._base_manager
        pk_name = model._meta.pk.name
        for name in names:
            counts[_label(model, name)] = 0
        ids = list(manager.order_by(pk_name).values_list(pk_name, flat=True))
        for start in range(0, len(ids), REENCRYPT_BATCH):
            batch = ids[start : start + REENCRYPT_BATCH]
            with transaction.atomic():
                # History rows are append-only on PostgreSQL except for this rewrite.
                history_reencrypt_allow()
                rows = manager.select_for_update().filter(pk__in=batch).values_list("pk", *names)
                for pk, *values in rows:
                    changed = {n: v for n, v in zip(names, values, strict=True) if v}
                    if changed:
                        manager.filter(pk=pk).update(**changed)
                        for n in changed:
                            counts[_label(model, n)] += 1
    return counts


def fields_needing_old_keys() -> dict[str, int]:
    """Per encrypted field, how many stored values the first key alone cannot read (they
    need an older key: not re-encrypted yet). All zero: the old keys may be dropped."""
    first = Fernet(str(settings.FIELD_ENCRYPTION_KEY).split(",")[0].strip())
    counts: dict[str, int] = {}
    for model, names in encrypted_fields():
        table = connection.ops.quote_name(model._meta.db_table)
        columns = {f.name: f.column for f in model._meta.concrete_fields}
        for name in names:
            column = connection.ops.quote_name(columns[name])
            stale = 0
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT {column} FROM {table} WHERE {column} LIKE %s",  # noqa: S608  # nosec B608  # model table and column, quoted
                    [f"{ENCRYPTED_PREFIX}%"],
                )
                for (value,) in cursor.fetchall():
                    try:
                        first.decrypt(value.removeprefix(ENCRYPTED_PREFIX).encode())
                    except InvalidToken:
                        stale += 1
            counts[_label(model, name)] = stale
    return counts
