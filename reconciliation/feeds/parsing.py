"""Reading provider JSON exactly: numbers as Decimal (never float), ISO dates, clear errors."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

from reconciliation.feeds.errors import FeedError, FeedErrorCode


def json_loads(body: bytes | str, *, provider: str) -> Any:
    """JSON with every number that has a fraction read as Decimal, so 12.30 stays 12.30."""
    try:
        return json.loads(body, parse_float=Decimal)
    except ValueError as exc:
        raise FeedError(
            f"{provider} answered with something that is not JSON: {exc}",
            code=FeedErrorCode.BAD_RESPONSE,
            provider=provider,
        ) from None


def bad_response(provider: str, message: str) -> FeedError:
    return FeedError(
        f"{provider} answered in an unexpected shape: {message}",
        code=FeedErrorCode.BAD_RESPONSE,
        provider=provider,
    )


def decimal_field(value: Any, *, provider: str, where: str) -> Decimal:
    """A JSON number (already Decimal or int from ``json_loads``) or numeric string."""
    if isinstance(value, bool) or value is None:
        raise bad_response(provider, f"{where} is {value!r}, not an amount")
    if isinstance(value, Decimal | int):
        amount = Decimal(value)
    elif isinstance(value, str):
        try:
            amount = Decimal(value.strip())
        except ArithmeticError:
            raise bad_response(provider, f"{where} is {value!r}, not an amount") from None
    else:
        # A float here means the body was not read with json_loads: refuse rather than round.
        raise bad_response(provider, f"{where} is a {type(value).__name__}, not an exact amount")
    if not amount.is_finite():
        raise bad_response(provider, f"{where} is {value!r}, not an amount")
    return amount


def optional_decimal(value: Any, *, provider: str, where: str) -> Decimal | None:
    return None if value is None else decimal_field(value, provider=provider, where=where)


def date_field(value: Any, *, provider: str, where: str) -> dt.date:
    if not isinstance(value, str):
        raise bad_response(provider, f"{where} is {value!r}, not a date")
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        raise bad_response(provider, f"{where} is {value!r}, not a YYYY-MM-DD date") from None


def optional_date(value: Any, *, provider: str, where: str) -> dt.date | None:
    return None if value in (None, "") else date_field(value, provider=provider, where=where)


def negate(amount: Decimal) -> Decimal:
    """``-amount`` without a negative zero (``-Decimal("0.00")`` is ``Decimal("-0.00")``)."""
    return Decimal(0) - amount


def text(value: Any) -> str:
    return "" if value is None else str(value)
