"""Envestnet | Yodlee bank feed over its REST API (v1.1) with requests: ``/auth/token``,
``/accounts`` and ``/transactions`` paged with ``skip`` and ``top``.

Every call carries ``Api-Version: 1.1`` and ``Authorization: Bearer <user access token>``.
Yodlee amounts are unsigned ``{amount, currency}`` objects; ``baseType`` says the direction
(CREDIT into the account, DEBIT out of it), which becomes the sign here.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import requests

from reconciliation.feeds.errors import FeedError, FeedErrorCode
from reconciliation.feeds.parsing import (
    bad_response,
    date_field,
    decimal_field,
    json_loads,
    negate,
    optional_date,
    optional_decimal,
    text,
)
from reconciliation.feeds.retry import RetryPolicy, Sleep, call_with_retries
from reconciliation.feeds.types import FeedAccount, FeedTransaction

PROVIDER = "yodlee"
API_VERSION = "1.1"
# Yodlee's largest page for GET /transactions.
MAX_TOP = 500


@dataclass(frozen=True)
class YodleeConfig:
    """Where to call Yodlee (e.g. ``https://sandbox.api.yodlee.com/ysl``) and for how long."""

    base_url: str
    timeout_seconds: float = 30.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)


@dataclass(frozen=True)
class YodleeToken:
    access_token: str
    expires_in_seconds: int
    issued_at: str = ""


def _headers(access_token: str | None = None) -> dict[str, str]:
    headers = {"Api-Version": API_VERSION, "Accept": "application/json"}
    if access_token is not None:
        headers["Authorization"] = f"Bearer {access_token}"
    return headers


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _error_from(response: requests.Response) -> FeedError:
    try:
        body = response.json()
    except ValueError:
        body = None
    body = body if isinstance(body, dict) else {}
    error_code = text(body.get("errorCode"))
    reference = text(body.get("referenceCode"))
    detail = text(body.get("errorMessage")) or response.reason or "no error message"
    status = response.status_code
    if status == 429:
        code = FeedErrorCode.RATE_LIMITED
    elif status >= 500:
        code = FeedErrorCode.PROVIDER_UNAVAILABLE
    elif status in (401, 403) or error_code in {"Y008", "Y020", "Y023", "Y016", "Y303"}:
        code = FeedErrorCode.INVALID_CREDENTIALS
    else:
        code = FeedErrorCode.INVALID_REQUEST
    where = f"HTTP {status}" + (f", reference {reference}" if reference else "")
    return FeedError(
        f"Yodlee {error_code or 'error'}: {detail} ({where})",
        code=code,
        provider=PROVIDER,
        provider_code=error_code,
        http_status=status,
        request_id=reference,
        retry_after_seconds=_retry_after(response),
    )


def _request(
    method: str,
    path: str,
    *,
    config: YodleeConfig,
    headers: Mapping[str, str],
    params: Mapping[str, Any] | None = None,
    data: Mapping[str, str] | None = None,
    session: requests.Session | None = None,
) -> Any:
    url = f"{config.base_url.rstrip('/')}/{path.lstrip('/')}"
    try:
        response = (session or requests).request(
            method,
            url,
            headers=dict(headers),
            params=params,
            data=data,
            timeout=config.timeout_seconds,
        )
    except requests.RequestException as exc:
        raise FeedError(
            f"Yodlee could not be reached at {url}: {exc}",
            code=FeedErrorCode.PROVIDER_UNAVAILABLE,
            provider=PROVIDER,
        ) from None
    if not 200 <= response.status_code < 300:
        raise _error_from(response)
    if not response.content.strip():
        return {}
    return json_loads(response.content, provider=PROVIDER)


def yodlee_token_get(
    *,
    config: YodleeConfig,
    client_id: str,
    secret: str,
    login_name: str,
    sleep: Sleep = time.sleep,
) -> YodleeToken:
    """A user access token (client credentials: ``clientId`` and ``secret`` in the form body,
    the user's ``loginName`` header). It expires after ``expires_in_seconds`` (30 min)."""
    body = call_with_retries(
        lambda: _request(
            "POST",
            "/auth/token",
            config=config,
            headers={**_headers(), "loginName": login_name},
            data={"clientId": client_id, "secret": secret},
        ),
        policy=config.retry,
        sleep=sleep,
    )
    token = body.get("token") if isinstance(body, dict) else None
    if not isinstance(token, dict) or not token.get("accessToken"):
        raise bad_response(PROVIDER, "/auth/token has no token.accessToken")
    return YodleeToken(
        access_token=text(token["accessToken"]),
        expires_in_seconds=int(token.get("expiresIn") or 0),
        issued_at=text(token.get("issuedAt")),
    )


def _money(value: Any, *, where: str) -> tuple[Any, str]:
    if not isinstance(value, Mapping):
        raise bad_response(PROVIDER, f"{where} is {value!r}, not an {{amount, currency}} object")
    amount = decimal_field(value.get("amount"), provider=PROVIDER, where=f"{where}.amount")
    currency = text(value.get("currency")).upper()
    if not currency:
        raise bad_response(PROVIDER, f"{where} has no currency")
    return amount, currency


def transaction_from(data: Mapping[str, Any]) -> FeedTransaction:
    """A FeedTransaction from a Yodlee transaction: CREDIT positive, DEBIT negative."""
    tid = text(data.get("id"))
    if not tid:
        raise bad_response(PROVIDER, "a transaction has no id")
    where = f"transaction {tid}"
    amount, currency = _money(data.get("amount"), where=f"{where} amount")
    base_type = text(data.get("baseType")).upper()
    if base_type == "DEBIT":
        amount = negate(abs(amount))
    elif base_type == "CREDIT":
        amount = abs(amount)
    else:
        raise bad_response(PROVIDER, f"{where} baseType is {base_type!r}, not CREDIT or DEBIT")
    description = data.get("description") or {}
    if not isinstance(description, Mapping):
        description = {}
    merchant = data.get("merchant") or {}
    merchant_name = text(merchant.get("name")) if isinstance(merchant, Mapping) else ""
    booked = data.get("postDate") or data.get("date")
    return FeedTransaction(
        provider=PROVIDER,
        transaction_id=tid,
        account_id=text(data.get("accountId")),
        booking_date=date_field(booked, provider=PROVIDER, where=f"{where} postDate/date"),
        authorized_date=optional_date(
            data.get("transactionDate"), provider=PROVIDER, where=f"{where} transactionDate"
        ),
        amount=amount,
        currency=currency,
        pending=text(data.get("status")).upper() == "PENDING",
        counterparty_name=merchant_name or text(description.get("simple")),
        description=text(description.get("original") or description.get("simple")),
        category=text(data.get("category")),
        raw=json.dumps(data, default=str, sort_keys=True),
    )


def yodlee_transactions_list(
    *,
    config: YodleeConfig,
    access_token: str,
    from_date: dt.date,
    to_date: dt.date,
    account_id: str = "",
    top: int = MAX_TOP,
    session: requests.Session | None = None,
    sleep: Sleep = time.sleep,
) -> list[FeedTransaction]:
    """Every transaction dated ``from_date`` to ``to_date`` (inclusive), paging with
    ``skip``/``top`` until a short page. Offset paging over a list that can change between
    pages may repeat a transaction: each id is returned once (its latest version)."""
    if not 1 <= top <= MAX_TOP:
        raise ValueError(f"top must be between 1 and {MAX_TOP}")
    if from_date > to_date:
        raise ValueError("from_date is after to_date")
    found: dict[str, FeedTransaction] = {}
    skip = 0
    while True:
        params: dict[str, Any] = {
            "fromDate": from_date.isoformat(),
            "toDate": to_date.isoformat(),
            "skip": skip,
            "top": top,
        }
        if account_id:
            params["accountId"] = account_id

        def get_page(params: dict[str, Any] = params) -> Any:
            return _request(
                "GET",
                "/transactions",
                config=config,
                headers=_headers(access_token),
                params=params,
                session=session,
            )

        body = call_with_retries(get_page, policy=config.retry, sleep=sleep)
        # Yodlee answers {} rather than an empty list when nothing is left.
        rows = body.get("transaction", []) if isinstance(body, dict) else None
        if not isinstance(rows, list):
            raise bad_response(PROVIDER, f"/transactions?skip={skip} has no transaction list")
        for row in rows:
            transaction = transaction_from(row)
            found[transaction.transaction_id] = transaction
        if len(rows) < top:
            return list(found.values())
        skip += len(rows)


def account_from(data: Mapping[str, Any]) -> FeedAccount:
    account_id = text(data.get("id"))
    if not account_id:
        raise bad_response(PROVIDER, "an account has no id")
    where = f"account {account_id}"
    current = data.get("currentBalance") or data.get("balance")
    available = data.get("availableBalance")
    current_amount, currency = (None, "")
    if current is not None:
        current_amount, currency = _money(current, where=f"{where} balance")
    available_amount = None
    if available is not None:
        available_amount, available_currency = _money(available, where=f"{where} available")
        currency = currency or available_currency
    return FeedAccount(
        provider=PROVIDER,
        account_id=account_id,
        name=text(data.get("accountName") or data.get("displayedName")),
        currency=currency,
        current_balance=optional_decimal(current_amount, provider=PROVIDER, where=where),
        available_balance=available_amount,
        mask=text(data.get("accountNumber")),
        type=text(data.get("CONTAINER")),
        subtype=text(data.get("accountType")),
        institution=text(data.get("providerName")),
        status=text(data.get("accountStatus")),
        raw=json.dumps(data, default=str, sort_keys=True),
    )


def yodlee_accounts_list(
    *,
    config: YodleeConfig,
    access_token: str,
    session: requests.Session | None = None,
    sleep: Sleep = time.sleep,
) -> list[FeedAccount]:
    """The user's accounts with their balances (``GET /accounts``)."""
    body = call_with_retries(
        lambda: _request(
            "GET", "/accounts", config=config, headers=_headers(access_token), session=session
        ),
        policy=config.retry,
        sleep=sleep,
    )
    rows = body.get("account", []) if isinstance(body, dict) else None
    if not isinstance(rows, list):
        raise bad_response(PROVIDER, "/accounts has no account list")
    return [account_from(row) for row in rows]
