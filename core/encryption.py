"""Field encryption at rest with the environment's FIELD_ENCRYPTION_KEY (Fernet, rotatable).

Used for bank account numbers and tax ids in every app; values are only ever shown masked.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

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
    then re-encrypt the rows (``payment_methods_reencrypt``) and drop the old keys.
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
