"""Plaid bank feed through plaid-python: ``/transactions/sync`` and ``/accounts/balance/get``.

The SDK builds and authenticates the requests (PLAID-CLIENT-ID, PLAID-SECRET, Plaid-Version)
against a configurable host (a local fake in tests). Responses are read from the raw JSON with
Decimal numbers rather than through the SDK's models, which hold amounts as float and refuse a
whole response when Plaid adds an enum value the installed SDK does not know.

Plaid's sign convention is the reverse of ours: a positive Plaid amount is money out of the
account, so amounts are negated here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import plaid
import urllib3
from plaid.api import plaid_api
from plaid.model.accounts_balance_get_request import AccountsBalanceGetRequest
from plaid.model.accounts_balance_get_request_options import AccountsBalanceGetRequestOptions
from plaid.model.transactions_sync_request import TransactionsSyncRequest
from plaid.model.transactions_sync_request_options import TransactionsSyncRequestOptions

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
from reconciliation.feeds.types import (
    FeedAccount,
    FeedTransaction,
    RemovedTransaction,
    SyncResult,
)

PROVIDER = "plaid"
# Plaid's maximum page size for /transactions/sync.
MAX_SYNC_COUNT = 500
MUTATION_DURING_PAGINATION = "TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION"

_LOGIN_REQUIRED = {
    "ITEM_LOGIN_REQUIRED",
    "ITEM_LOCKED",
    "ITEM_NOT_SUPPORTED",
    "USER_SETUP_REQUIRED",
}
_INVALID_CREDENTIALS = {"INVALID_API_KEYS", "UNAUTHORIZED_ENVIRONMENT", "INVALID_SECRET"}


@dataclass(frozen=True)
class PlaidConfig:
    """Where and as whom to call Plaid; the caller reads these from settings or the database."""

    host: str
    client_id: str
    secret: str
    timeout_seconds: float = 30.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)


def _api(config: PlaidConfig) -> plaid_api.PlaidApi:
    configuration = plaid.Configuration(
        host=config.host.rstrip("/"),
        api_key={"clientId": config.client_id, "secret": config.secret},
    )
    # Retries are ours (bounded, logged as one FeedError), not urllib3's silent ones.
    configuration.retries = False
    return plaid_api.PlaidApi(plaid.ApiClient(configuration))


def _error_from(exc: plaid.ApiException) -> FeedError:
    status = int(exc.status or 0)
    body: Mapping[str, Any] = {}
    if exc.body:
        try:
            parsed = json.loads(exc.body)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            body = parsed
    error_type = text(body.get("error_type"))
    error_code = text(body.get("error_code"))
    request_id = text(body.get("request_id"))
    detail = text(body.get("error_message")) or text(exc.reason) or "no error message"
    if error_code == MUTATION_DURING_PAGINATION:
        code = FeedErrorCode.MUTATION_DURING_PAGINATION
    elif error_type == "RATE_LIMIT_EXCEEDED" or status == 429:
        code = FeedErrorCode.RATE_LIMITED
    elif status >= 500 or error_type == "API_ERROR" or status == 0:
        code = FeedErrorCode.PROVIDER_UNAVAILABLE
    elif error_type == "INSTITUTION_ERROR":
        code = FeedErrorCode.INSTITUTION_UNAVAILABLE
    elif error_code == "INVALID_ACCESS_TOKEN":
        code = FeedErrorCode.INVALID_ACCESS_TOKEN
    elif error_code in _LOGIN_REQUIRED:
        code = FeedErrorCode.LOGIN_REQUIRED
    elif error_code in _INVALID_CREDENTIALS or status in (401, 403):
        code = FeedErrorCode.INVALID_CREDENTIALS
    else:
        code = FeedErrorCode.INVALID_REQUEST
    where = f" (HTTP {status}, request {request_id})" if request_id else f" (HTTP {status})"
    label = error_code or error_type or "error"
    return FeedError(
        f"Plaid {label}: {detail}{where}",
        code=code,
        provider=PROVIDER,
        provider_code=error_code,
        http_status=status or None,
        request_id=request_id,
    )


def _post(call: Any, request: Any, *, config: PlaidConfig) -> Mapping[str, Any]:
    """One SDK call, its answer as JSON with Decimal numbers, its failure as a FeedError."""
    try:
        response = call(request, _preload_content=False, _request_timeout=config.timeout_seconds)
    except plaid.ApiException as exc:
        raise _error_from(exc) from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise FeedError(
            f"Plaid could not be reached at {config.host}: {exc}",
            code=FeedErrorCode.PROVIDER_UNAVAILABLE,
            provider=PROVIDER,
        ) from None
    body = json_loads(response.data, provider=PROVIDER)
    if not isinstance(body, dict):
        raise bad_response(PROVIDER, "the body is not a JSON object")
    return body


def transaction_from(data: Mapping[str, Any]) -> FeedTransaction:
    """A FeedTransaction from a Plaid Transaction object (amount negated: Plaid's positive is
    money out)."""
    tid = text(data.get("transaction_id"))
    if not tid:
        raise bad_response(PROVIDER, "a transaction has no transaction_id")
    where = f"transaction {tid}"
    currency = text(data.get("iso_currency_code") or data.get("unofficial_currency_code"))
    if not currency:
        raise bad_response(PROVIDER, f"{where} has neither iso_ nor unofficial_currency_code")
    merchant = text(data.get("merchant_name"))
    name = text(data.get("name"))
    category = data.get("personal_finance_category") or {}
    return FeedTransaction(
        provider=PROVIDER,
        transaction_id=tid,
        account_id=text(data.get("account_id")),
        booking_date=date_field(data.get("date"), provider=PROVIDER, where=f"{where} date"),
        authorized_date=optional_date(
            data.get("authorized_date"), provider=PROVIDER, where=f"{where} authorized_date"
        ),
        amount=negate(decimal_field(data.get("amount"), provider=PROVIDER, where=where)),
        currency=currency.upper(),
        pending=bool(data.get("pending")),
        pending_transaction_id=text(data.get("pending_transaction_id")),
        counterparty_name=merchant or name,
        description=text(data.get("original_description")) or name,
        category=text(category.get("primary")) if isinstance(category, Mapping) else "",
        raw=json.dumps(data, default=str, sort_keys=True),
    )


def _sync_once(
    api: plaid_api.PlaidApi,
    *,
    config: PlaidConfig,
    access_token: str,
    start_cursor: str,
    count: int,
    account_id: str,
    sleep: Sleep,
) -> SyncResult:
    added: list[FeedTransaction] = []
    modified: list[FeedTransaction] = []
    removed: list[RemovedTransaction] = []
    cursor = start_cursor
    pages = 0
    while True:
        kwargs: dict[str, Any] = {"access_token": access_token, "count": count}
        if cursor:
            kwargs["cursor"] = cursor
        if account_id:
            kwargs["options"] = TransactionsSyncRequestOptions(account_id=account_id)
        request = TransactionsSyncRequest(**kwargs)

        def sync_page(request: Any = request) -> Mapping[str, Any]:
            return _post(api.transactions_sync, request, config=config)

        page = call_with_retries(sync_page, policy=config.retry, sleep=sleep)
        pages += 1
        try:
            added.extend(transaction_from(t) for t in page["added"])
            modified.extend(transaction_from(t) for t in page["modified"])
            removed.extend(
                RemovedTransaction(text(r["transaction_id"]), text(r.get("account_id")))
                for r in page["removed"]
            )
            next_cursor = text(page["next_cursor"])
            has_more = page["has_more"]
        except (KeyError, TypeError, AttributeError) as exc:
            raise bad_response(PROVIDER, f"/transactions/sync page {pages}: {exc!r}") from None
        if has_more and (not next_cursor or next_cursor == cursor):
            raise bad_response(PROVIDER, f"has_more is true but the cursor did not move ({pages})")
        cursor = next_cursor
        if not has_more:
            return SyncResult(
                start_cursor=start_cursor,
                next_cursor=cursor,
                added=tuple(added),
                modified=tuple(modified),
                removed=tuple(removed),
                pages=pages,
                update_status=text(page.get("transactions_update_status")),
            )


def plaid_transactions_sync(
    *,
    config: PlaidConfig,
    access_token: str,
    cursor: str = "",
    count: int = MAX_SYNC_COUNT,
    account_id: str = "",
    sleep: Sleep = time.sleep,
) -> SyncResult:
    """Every transaction change since ``cursor`` ("" for the whole history), all pages pulled.

    When Plaid answers TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION, everything gathered is
    dropped and the sync starts again from ``cursor``, as Plaid documents, at most
    ``config.retry.max_restarts`` times. Nothing is half-returned: the caller stores
    ``next_cursor`` only with the changes it came with.
    """
    if not 1 <= count <= MAX_SYNC_COUNT:
        raise ValueError(f"count must be between 1 and {MAX_SYNC_COUNT}")
    api = _api(config)
    restarts = 0
    while True:
        try:
            result = _sync_once(
                api,
                config=config,
                access_token=access_token,
                start_cursor=cursor,
                count=count,
                account_id=account_id,
                sleep=sleep,
            )
        except FeedError as exc:
            if (
                exc.feed_code is not FeedErrorCode.MUTATION_DURING_PAGINATION
                or restarts >= config.retry.max_restarts
            ):
                raise
            restarts += 1
            sleep(config.retry.delay(restarts))
            continue
        return replace(result, restarts=restarts)


def account_from(data: Mapping[str, Any]) -> FeedAccount:
    account_id = text(data.get("account_id"))
    balances = data.get("balances")
    if not account_id or not isinstance(balances, Mapping):
        raise bad_response(PROVIDER, "an account has no account_id or balances")
    where = f"account {account_id}"
    currency = text(balances.get("iso_currency_code") or balances.get("unofficial_currency_code"))
    return FeedAccount(
        provider=PROVIDER,
        account_id=account_id,
        name=text(data.get("official_name") or data.get("name")),
        currency=currency.upper(),
        current_balance=optional_decimal(
            balances.get("current"), provider=PROVIDER, where=f"{where} balances.current"
        ),
        available_balance=optional_decimal(
            balances.get("available"), provider=PROVIDER, where=f"{where} balances.available"
        ),
        mask=text(data.get("mask")),
        type=text(data.get("type")),
        subtype=text(data.get("subtype")),
        raw=json.dumps(data, default=str, sort_keys=True),
    )


def plaid_balance_get(
    *,
    config: PlaidConfig,
    access_token: str,
    account_ids: Sequence[str] = (),
    sleep: Sleep = time.sleep,
) -> list[FeedAccount]:
    """The Item's accounts with their balances as the bank reports them right now
    (``/accounts/balance/get`` asks the bank, unlike the cached ``/accounts/get``)."""
    kwargs: dict[str, Any] = {"access_token": access_token}
    if account_ids:
        kwargs["options"] = AccountsBalanceGetRequestOptions(account_ids=list(account_ids))
    request = AccountsBalanceGetRequest(**kwargs)
    api = _api(config)
    body = call_with_retries(
        lambda: _post(api.accounts_balance_get, request, config=config),
        policy=config.retry,
        sleep=sleep,
    )
    accounts = body.get("accounts")
    if not isinstance(accounts, list):
        raise bad_response(PROVIDER, "/accounts/balance/get has no accounts list")
    return [account_from(a) for a in accounts]
