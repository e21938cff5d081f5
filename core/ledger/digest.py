"""A keyed digest of an entry's content, written by the posting service.

It lets ``ledger_check`` tell an entry posted through the application from one written or
altered around it (raw SQL, triggers disabled), and lets an idempotent retry tell "the same
entry again" from "another entry under a used key".
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from functools import lru_cache

from django.conf import settings

SALT = "core.ledger.journal-entry"


def _message(
    *,
    entry_date: date,
    functional_currency: str,
    source: str,
    idempotency_key: str | None,
    reversal_of_id: int | None,
    lines: Iterable[tuple[int, str, Decimal, Decimal, Decimal, Decimal]],
) -> str:
    head = "|".join(
        (
            entry_date.isoformat(),
            functional_currency,
            source,
            idempotency_key or "",
            str(reversal_of_id or ""),
        )
    )
    body = ";".join(
        f"{account_id},{currency},{debit:.4f},{credit:.4f},{fdebit:.4f},{fcredit:.4f}"
        for account_id, currency, debit, credit, fdebit, fcredit in lines
    )
    return f"{head}#{body}"


@lru_cache(maxsize=8)
def _key(secret: str) -> bytes:
    # The key derivation of django.utils.crypto.salted_hmac, done once per secret.
    return hashlib.sha256((SALT + secret).encode()).digest()


def entry_digest(secret: str | None = None, **content: object) -> str:
    key = _key(secret if secret is not None else settings.SECRET_KEY)
    return hmac.new(key, _message(**content).encode(), hashlib.sha256).hexdigest()  # type: ignore[arg-type]


def entry_digest_valid(digest: str, **content: object) -> bool:
    """True when the digest matches under the current key or a fallback key."""
    for secret in (settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", ())):
        if hmac.compare_digest(digest, entry_digest(secret, **content)):
            return True
    return False
