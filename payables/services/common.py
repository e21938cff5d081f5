"""Helpers shared by the payables services."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sized
from datetime import date
from decimal import Decimal
from typing import Any

from core.exceptions import DomainError, PermissionDeniedError
from core.fx import fx_convert
from core.money import MAX_QUANTITY, check_amount, check_limit, round_money, round_storage
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


def lines_limit_check(lines: Sized, what: str) -> None:
    """Refuse a document with more lines than the system settings allow."""
    limit = system_settings().limits.document_lines
    if len(lines) > limit:
        raise DomainError(
            f"{what} has at most {limit} lines; this one has {len(lines)}.",
            code="too_many_lines",
            field="lines",
        )


def line_amount_check(
    *, quantity: Decimal, unit_price: Decimal, currency: str, position: int
) -> Decimal:
    """A line's amount (quantity x price, rounded to the currency), every figure bounded so
    the line and the document's total fit their columns; refusals name the line's input."""
    field = f"lines[{position - 1}]"
    if not quantity.is_finite() or quantity <= 0:
        raise DomainError(
            f"Line {position}: quantity must be positive.",
            code="invalid",
            field=f"{field}.quantity",
        )
    check_limit(quantity, field=f"{field}.quantity", limit=MAX_QUANTITY)
    check_amount(unit_price, currency, field=f"{field}.unit_price")
    # Checked before rounding: a product of 30 digits cannot be quantized.
    return round_money(check_limit(quantity * unit_price, field=f"{field}.unit_price"), currency)
