"""A local fake of Plaid's /transactions/sync and /accounts/balance/get at the HTTP layer.

Shapes follow https://plaid.com/docs/api/products/transactions/#transactionssync and
https://plaid.com/docs/errors/. The Item's history is a log of changes (added, modified,
removed); a cursor is a position in that log, so a saved cursor yields only what came after
it. ``arm_mutation(...)`` changes the data while a client is paging: the next request that
continues a pagination answers TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION, as Plaid does.
Errors for the next requests are queued with ``queue_error(kind)``.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tests.reconciliation.fakes.http import Answer, Recorded, dumps, serving

CLIENT_ID = "client-id-fake"
SECRET = "secret-fake"
ACCESS_TOKEN = "access-sandbox-6f1c0b8e-fake"
ACCOUNT_ID = "BxBXxLj1m4HMXBm9WZZmCWVbPjX16EHwv99vp"

ERRORS: dict[str, tuple[int, str, str, str]] = {
    "invalid_token": (
        400,
        "INVALID_INPUT",
        "INVALID_ACCESS_TOKEN",
        "provided access token is in an invalid format. expected format: "
        "access-<environment>-<identifier>",
    ),
    "invalid_keys": (
        400,
        "INVALID_INPUT",
        "INVALID_API_KEYS",
        "invalid client_id or secret provided",
    ),
    "login_required": (
        400,
        "ITEM_ERROR",
        "ITEM_LOGIN_REQUIRED",
        "the login details of this item have changed (credentials, MFA, or required user "
        "action) and a user login is required to update this information. use Link's update "
        "mode to restore the item to a good state",
    ),
    "rate_limit": (
        429,
        "RATE_LIMIT_EXCEEDED",
        "TRANSACTIONS_SYNC_LIMIT",
        "rate limit exceeded for attempts to access this item. please try again later",
    ),
    "server_error": (500, "API_ERROR", "INTERNAL_SERVER_ERROR", "an unexpected error occurred"),
    "maintenance": (
        503,
        "API_ERROR",
        "PLANNED_MAINTENANCE",
        "the Plaid API is temporarily unavailable due to planned maintenance",
    ),
    "institution_down": (
        400,
        "INSTITUTION_ERROR",
        "INSTITUTION_DOWN",
        "this financial institution is not currently responding to requests",
    ),
    "mutation": (
        400,
        "TRANSACTIONS_ERROR",
        "TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION",
        "Underlying transaction data changed since last page was fetched. Please restart "
        "pagination from last update.",
    ),
}


def plaid_transaction(
    transaction_id: str,
    amount: str,
    date: str,
    name: str,
    *,
    merchant_name: str | None = None,
    pending: bool = False,
    pending_transaction_id: str | None = None,
    authorized_date: str | None = None,
    iso_currency_code: str | None = "USD",
    unofficial_currency_code: str | None = None,
    account_id: str = ACCOUNT_ID,
) -> dict[str, Any]:
    """A Transaction object with every field /transactions/sync returns (API 2020-09-14).
    ``amount`` is Plaid's: positive for money out of the account."""
    return {
        "account_id": account_id,
        "account_owner": None,
        "amount": Decimal(amount),
        "authorized_date": authorized_date,
        "authorized_datetime": None,
        "category": None,
        "category_id": None,
        "check_number": None,
        "counterparties": (
            [
                {
                    "name": merchant_name,
                    "type": "merchant",
                    "logo_url": None,
                    "website": None,
                    "entity_id": None,
                    "confidence_level": "HIGH",
                }
            ]
            if merchant_name
            else []
        ),
        "date": date,
        "datetime": None,
        "iso_currency_code": iso_currency_code,
        "location": {
            "address": None,
            "city": None,
            "country": None,
            "lat": None,
            "lon": None,
            "postal_code": None,
            "region": None,
            "store_number": None,
        },
        "logo_url": None,
        "merchant_entity_id": None,
        "merchant_name": merchant_name,
        "name": name,
        "payment_channel": "other",
        "payment_meta": {
            "by_order_of": None,
            "payee": None,
            "payer": None,
            "payment_method": None,
            "payment_processor": None,
            "ppd_id": None,
            "reason": None,
            "reference_number": None,
        },
        "pending": pending,
        "pending_transaction_id": pending_transaction_id,
        "personal_finance_category": {
            "primary": "GENERAL_MERCHANDISE",
            "detailed": "GENERAL_MERCHANDISE_OTHER_GENERAL_MERCHANDISE",
            "confidence_level": "LOW",
        },
        "personal_finance_category_icon_url": "https://plaid-category-icons.plaid.com/PFC_GENERAL_MERCHANDISE.png",
        "transaction_code": None,
        "transaction_id": transaction_id,
        "transaction_type": "special",
        "unofficial_currency_code": unofficial_currency_code,
        "website": None,
    }


def plaid_account(
    current: str | None,
    available: str | None = None,
    *,
    account_id: str = ACCOUNT_ID,
    name: str = "Plaid Checking",
    currency: str = "USD",
    type_: str = "depository",
    subtype: str = "checking",
) -> dict[str, Any]:
    return {
        "account_id": account_id,
        "balances": {
            "available": None if available is None else Decimal(available),
            "current": None if current is None else Decimal(current),
            "iso_currency_code": currency,
            "limit": None,
            "unofficial_currency_code": None,
        },
        "mask": "0000",
        "name": name,
        "official_name": f"{name} Account",
        "subtype": subtype,
        "type": type_,
    }


@dataclass
class FakePlaid:
    log: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    accounts: list[dict[str, Any]] = field(default_factory=list)
    errors: deque[str] = field(default_factory=deque)
    requests: list[Recorded] = field(default_factory=list)
    # Changes to apply (and answer MUTATION_DURING_PAGINATION) when a pagination continues.
    mutations: deque[Callable[[FakePlaid], None]] = field(default_factory=deque)
    # Cursors handed out with has_more true: a request with one continues a pagination.
    continuing: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    counter: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    url: str = ""

    # --- test controls -------------------------------------------------------------------
    def add(self, *transactions: dict[str, Any]) -> None:
        self.log.extend(("added", t) for t in transactions)

    def modify(self, transaction: dict[str, Any]) -> None:
        self.log.append(("modified", transaction))

    def remove(self, transaction_id: str, account_id: str = ACCOUNT_ID) -> None:
        self.log.append(("removed", {"account_id": account_id, "transaction_id": transaction_id}))

    def queue_error(self, *kinds: str) -> None:
        self.errors.extend(kinds)

    def arm_mutation(self, change: Callable[[FakePlaid], None]) -> None:
        self.mutations.append(change)

    def sync_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path == "/transactions/sync"]

    @property
    def cursor_now(self) -> str:
        return _cursor(len(self.log))

    # --- server --------------------------------------------------------------------------
    def handle(self, request: Recorded) -> Answer:
        with self.lock:
            self.requests.append(request)
            request_id = f"req-fake-{next(self.counter):04d}"
            if request.method != "POST":
                return _error(405, "INVALID_REQUEST", "INVALID_HTTP_METHOD", "use POST", request_id)
            body = request.body if isinstance(request.body, dict) else {}
            client_id = request.headers.get("plaid-client-id") or body.get("client_id")
            secret = request.headers.get("plaid-secret") or body.get("secret")
            if (client_id, secret) != (CLIENT_ID, SECRET):
                return _error(*ERRORS["invalid_keys"], request_id)
            if body.get("access_token") != ACCESS_TOKEN:
                return _error(*ERRORS["invalid_token"], request_id)
            if self.errors:
                return _error(*ERRORS[self.errors.popleft()], request_id)
            if request.path == "/transactions/sync":
                return self._sync(body, request_id)
            if request.path == "/accounts/balance/get":
                return 200, dumps(
                    {"accounts": self.accounts, "item": _item(), "request_id": request_id}
                )
            return _error(404, "INVALID_REQUEST", "UNKNOWN_ENDPOINT", request.path, request_id)

    def _sync(self, body: dict[str, Any], request_id: str) -> Answer:
        cursor = body.get("cursor") or ""
        if cursor in self.continuing and self.mutations:
            self.mutations.popleft()(self)
            return _error(*ERRORS["mutation"], request_id)
        start = _position(cursor)
        if start is None or start > len(self.log):
            return _error(
                400, "INVALID_INPUT", "INVALID_FIELD", f"cursor {cursor!r} is invalid", request_id
            )
        count = int(body.get("count") or 100)
        page = self.log[start : start + count]
        end = start + len(page)
        has_more = end < len(self.log)
        next_cursor = _cursor(end)
        if has_more:
            self.continuing.add(next_cursor)
        return 200, dumps(
            {
                "accounts": self.accounts,
                "added": [t for kind, t in page if kind == "added"],
                "has_more": has_more,
                "modified": [t for kind, t in page if kind == "modified"],
                "next_cursor": next_cursor,
                "removed": [t for kind, t in page if kind == "removed"],
                "request_id": request_id,
                "transactions_update_status": "HISTORICAL_UPDATE_COMPLETE",
            }
        )


def _cursor(position: int) -> str:
    # Opaque to clients, like Plaid's; the fake reads back the log position.
    return f"CAESJ0ZAKE{position:06d}"


def _position(cursor: str) -> int | None:
    if cursor == "":
        return 0
    if cursor.startswith("CAESJ0ZAKE") and cursor[10:].isdigit():
        return int(cursor[10:])
    return None


def _item() -> dict[str, Any]:
    return {
        "available_products": [],
        "billed_products": ["transactions"],
        "consent_expiration_time": None,
        "error": None,
        "institution_id": "ins_109508",
        "item_id": "Ed6bjNrDLJfGvZWwnkQlfxwoNz54B5C97ejBr",
        "update_type": "background",
        "webhook": "",
    }


def _error(status: int, error_type: str, code: str, message: str, request_id: str) -> Answer:
    return status, dumps(
        {
            "display_message": None,
            "documentation_url": f"https://plaid.com/docs/errors/#{code.lower()}",
            "error_code": code,
            "error_message": message,
            "error_type": error_type,
            "request_id": request_id,
            "suggested_action": None,
        }
    )


@contextmanager
def running_fake_plaid() -> Iterator[FakePlaid]:
    fake = FakePlaid()
    with serving(fake.handle) as url:
        fake.url = url
        yield fake
