"""A local fake of Envestnet | Yodlee API v1.1 (/auth/token, /accounts, /transactions).

Shapes follow https://developer.envestnet.com/products/yodlee (Api-Version 1.1 header,
``Authorization: Bearer``, ``{"transaction": [...]}`` and ``{}`` when nothing is left,
``{errorCode, errorMessage, referenceCode}`` errors). Transactions are served newest first
and paged with ``skip`` and ``top``. Errors for the next requests: ``queue_error(kind)``.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tests.reconciliation.fakes.http import Answer, Recorded, dumps, serving

CLIENT_ID = "yodlee-client-fake"
SECRET = "yodlee-secret-fake"
LOGIN_NAME = "sbMem5f1c0b8e1"
ACCESS_TOKEN = "a3Xb9LkQfakeUserToken"
ACCOUNT_ID = 10_012_345

ERRORS: dict[str, tuple[int, str, str]] = {
    "invalid_token": (401, "Y008", "Invalid token"),
    "rate_limit": (429, "Y899", "Too many requests"),
    "server_error": (500, "Y902", "Oops some issue at our end"),
    "bad_request": (400, "Y800", "Invalid value for fromDate"),
}


def yodlee_transaction(
    transaction_id: int,
    amount: str,
    base_type: str,
    date: str,
    original: str,
    *,
    merchant: str | None = None,
    status: str = "POSTED",
    transaction_date: str | None = None,
    currency: str = "USD",
    account_id: int = ACCOUNT_ID,
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "CONTAINER": "bank",
        "id": transaction_id,
        "amount": {"amount": Decimal(amount), "currency": currency},
        "runningBalance": None,
        "baseType": base_type,
        "categoryType": "EXPENSE" if base_type == "DEBIT" else "INCOME",
        "categoryId": 1,
        "category": "Uncategorized",
        "categorySource": "SYSTEM",
        "highLevelCategoryId": 10000017,
        "createdDate": f"{date}T08:00:00Z",
        "lastUpdated": f"{date}T08:00:00Z",
        "description": {"original": original, "simple": original.title()},
        "isManual": False,
        "sourceType": "AGGREGATED",
        "date": date,
        "transactionDate": transaction_date or date,
        "postDate": date,
        "status": status,
        "accountId": account_id,
        "type": "PAYMENT" if base_type == "DEBIT" else "DEPOSIT",
        "subType": "PAYMENT" if base_type == "DEBIT" else "DEPOSIT",
    }
    if merchant:
        row["merchant"] = {"id": f"M{transaction_id}", "source": "YODLEE", "name": merchant}
    return row


def yodlee_account(balance: str, *, currency: str = "USD") -> dict[str, Any]:
    money = {"amount": Decimal(balance), "currency": currency}
    return {
        "CONTAINER": "bank",
        "providerAccountId": 12_345_678,
        "accountName": "TESTDATA",
        "accountStatus": "ACTIVE",
        "accountNumber": "xxxx3xxx",
        "aggregationSource": "USER",
        "isAsset": True,
        "balance": money,
        "id": ACCOUNT_ID,
        "lastUpdated": "2026-11-24T06:08:29Z",
        "includeInNetWorth": True,
        "providerId": "16441",
        "providerName": "Dag Site",
        "availableBalance": money,
        "currentBalance": money,
        "accountType": "SAVINGS",
        "displayedName": "LORETTA",
        "createdDate": "2026-11-01T06:08:26Z",
    }


@dataclass
class FakeYodlee:
    transactions: list[dict[str, Any]] = field(default_factory=list)
    accounts: list[dict[str, Any]] = field(default_factory=list)
    errors: deque[str] = field(default_factory=deque)
    requests: list[Recorded] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    counter: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    url: str = ""

    def queue_error(self, *kinds: str) -> None:
        self.errors.extend(kinds)

    def transaction_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path == "/transactions"]

    def handle(self, request: Recorded) -> Answer:
        with self.lock:
            self.requests.append(request)
            if request.headers.get("api-version") != "1.1":
                return _error(400, "Y800", "Invalid value for Api-Version", self.counter)
            if request.method == "POST" and request.path == "/auth/token":
                form = request.body if isinstance(request.body, dict) else {}
                if (form.get("clientId"), form.get("secret")) != (CLIENT_ID, SECRET):
                    return _error(401, "Y303", "clientId or secret is invalid", self.counter)
                if request.headers.get("loginname") != LOGIN_NAME:
                    return _error(400, "Y016", "loginName header missing", self.counter)
                token = {"accessToken": ACCESS_TOKEN, "issuedAt": "2026-11-25T10:00:00Z"}
                return 201, dumps({"token": {**token, "expiresIn": 1800}})
            if request.headers.get("authorization") != f"Bearer {ACCESS_TOKEN}":
                return _error(401, "Y008", "Invalid token", self.counter)
            if self.errors:
                status, code, message = ERRORS[self.errors.popleft()]
                headers = {"Retry-After": "3"} if status == 429 else {}
                return (*_error(status, code, message, self.counter), headers)
            if request.method == "GET" and request.path == "/transactions":
                return self._transactions(request.query)
            if request.method == "GET" and request.path == "/accounts":
                return 200, dumps({"account": self.accounts})
            return _error(404, "Y400", f"Resource not found {request.path}", self.counter)

    def _transactions(self, query: dict[str, Any]) -> Answer:
        start, end = query.get("fromDate", ""), query.get("toDate", "")
        rows = [
            t
            for t in self.transactions
            if start <= t["date"] <= end
            and (not query.get("accountId") or str(t["accountId"]) == query["accountId"])
        ]
        rows.sort(key=lambda t: (t["date"], t["id"]), reverse=True)
        skip, top = int(query.get("skip", 0)), int(query.get("top", 500))
        page = rows[skip : skip + top]
        return 200, dumps({"transaction": page} if page else {})


def _error(status: int, code: str, message: str, counter: Iterator[int]) -> tuple[int, bytes]:
    reference = f"ref-{next(counter):04d}"
    return status, dumps({"errorCode": code, "errorMessage": message, "referenceCode": reference})


@contextmanager
def running_fake_yodlee() -> Iterator[FakeYodlee]:
    fake = FakeYodlee()
    with serving(fake.handle) as url:
        fake.url = url
        yield fake
