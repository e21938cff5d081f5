"""Helpers shared by the payables services."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from decimal import Decimal
from typing import Any

from core.exceptions import PermissionDeniedError
from core.fx import fx_convert
from core.money import round_storage
from core.system_settings import system_settings


def require(actor: Any, perm: str, what: str) -> None:
    """Refuse with 403 unless ``actor`` holds ``perm`` (``what`` names the act for people)."""
    if actor is None or not actor.has_perm(perm):
        raise PermissionDeniedError(f"You are not allowed to {what}.", code="permission_denied")


def functional_amount(amount: Decimal, currency: str, on_date: date) -> Decimal:
    """``amount`` in the functional currency at ``on_date``'s rate (what approval levels use)."""
    functional = system_settings().functional_currency
    if currency == functional:
        return round_storage(amount)
    return fx_convert(
        amount=amount, from_currency=currency, to_currency=functional, on_date=on_date, exact=True
    )


def content_hash(payload: dict[str, Any]) -> str:
    """sha256 of a document's content as decided on (C5): any edit changes it."""
    text = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
