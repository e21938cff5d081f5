"""A local fake of PayPal's OAuth token and Transaction Search API at the HTTP layer.

Shapes follow https://developer.paypal.com/docs/api/transaction-search/v1/ (``GET
/v1/reporting/transactions`` with ``start_date``, ``end_date``, ``fields``, ``page_size`` and
``page``; ``transaction_details[].transaction_info``; ``page``, ``total_items``,
``total_pages``; the 31-day limit and its INVALID_REQUEST error) and
https://developer.paypal.com/api/rest/authentication/ (``POST /v1/oauth2/token``). Amounts are
decimal strings, fees negative, as PayPal writes them. Errors for the next report requests:
``queue_error(kind)``; ``short_page`` drops a row from a page to make a partial report.
"""

from __future__ import annotations

import base64
import datetime as dt
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tests.reconciliation.fakes.http import Answer, Recorded, dumps, serving

CLIENT_ID = "AfakeClientId"
CLIENT_SECRET = "EfakeSecret"
TOKEN = "A21AAFakeAccessToken"

ERRORS: dict[str, tuple[int, dict[str, Any]]] = {
    "server_error": (
        500,
        {"name": "INTERNAL_SERVICE_ERROR", "message": "An internal service error occurred."},
    ),
    "rate_limit": (429, {"name": "RATE_LIMIT_REACHED", "message": "Too many requests."}),
}


def _parse(value: str) -> dt.datetime:
    return dt.datetime.strptime(value.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S%z")


def transaction(
    txn_id: str,
    code: str,
    value: str,
    fee: str | None = None,
    *,
    at: dt.datetime,
    status: str = "S",
    currency: str = "USD",
    reference: str | None = None,
    subject: str | None = None,
) -> dict[str, Any]:
    """One ``transaction_details[]`` row (``fields=all``: the other blocks present, empty)."""
    info: dict[str, Any] = {
        "paypal_account_id": "FAKEPAYER0001",
        "transaction_id": txn_id,
        "transaction_event_code": code,
        "transaction_initiation_date": at.strftime("%Y-%m-%dT%H:%M:%S+0000"),
        "transaction_updated_date": at.strftime("%Y-%m-%dT%H:%M:%S+0000"),
        "transaction_amount": {"currency_code": currency, "value": value},
        "transaction_status": status,
        "protection_eligibility": "01",
    }
    if fee is not None:
        info["fee_amount"] = {"currency_code": currency, "value": fee}
    if reference:
        info["paypal_reference_id"] = reference
        info["paypal_reference_id_type"] = "TXN"
    if subject:
        info["transaction_subject"] = subject
    return {
        "transaction_info": info,
        "payer_info": {"account_id": "FAKEPAYER0001", "address_status": "N"},
        "shipping_info": {},
        "cart_info": {},
        "store_info": {},
        "auction_info": {},
        "incentive_info": {},
    }


@dataclass
class FakePayPalReporting:
    rows: list[dict[str, Any]] = field(default_factory=list)
    errors: deque[str] = field(default_factory=deque)
    # Page number -> how many rows to drop from it (a partial report).
    short_page: dict[int, int] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def add(self, *rows: dict[str, Any]) -> None:
        self.rows.extend(rows)

    def queue_error(self, *kinds: str) -> None:
        self.errors.extend(kinds)

    def handle(self, request: Recorded) -> Answer:
        with self.lock:
            self.requests.append(request)
            if request.method == "POST" and request.path == "/v1/oauth2/token":
                return self._token(request)
            if request.headers.get("authorization") != f"Bearer {TOKEN}":
                return 401, dumps(
                    {
                        "error": "invalid_token",
                        "error_description": "Token signature verification failed",
                    }
                )
            if request.method == "GET" and request.path == "/v1/reporting/transactions":
                if self.errors:
                    status, body = ERRORS[self.errors.popleft()]
                    return status, dumps(body)
                return self._transactions(request.query)
            return 404, dumps({"name": "RESOURCE_NOT_FOUND", "message": request.path})

    def _token(self, request: Recorded) -> Answer:
        expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if request.headers.get("authorization") != f"Basic {expected}":
            return 401, dumps(
                {"error": "invalid_client", "error_description": "Client Authentication failed"}
            )
        return 200, dumps(
            {
                "scope": "https://uri.paypal.com/services/reporting/search/read",
                "access_token": TOKEN,
                "token_type": "Bearer",
                "app_id": "APP-80W284485P519543T",
                "expires_in": 32400,
                "nonce": "2025-11-20T10:00:00Zfake",
            }
        )

    def _transactions(self, query: dict[str, Any]) -> Answer:
        try:
            start, end = _parse(query["start_date"]), _parse(query["end_date"])
            page, size = int(query.get("page", 1)), int(query.get("page_size", 100))
        except (KeyError, ValueError):
            return 400, dumps({"name": "INVALID_REQUEST", "message": "Invalid request."})
        if end - start > dt.timedelta(days=31):
            return 400, dumps(
                {
                    "name": "INVALID_REQUEST",
                    "message": "Request is not well-formed, syntactically incorrect, or "
                    "violates schema.",
                    "details": [
                        {"field": "start_date", "issue": "Date range is greater than 31 days"}
                    ],
                }
            )
        rows = [
            r
            for r in self.rows
            if start <= _parse(r["transaction_info"]["transaction_initiation_date"]) <= end
        ]
        total_pages = max((len(rows) + size - 1) // size, 1)
        data = rows[(page - 1) * size : page * size]
        drop = self.short_page.get(page, 0)
        if drop:
            data = data[:-drop]
        return 200, dumps(
            {
                "transaction_details": data,
                "account_number": "FAKEMERCHANT01",
                "start_date": query["start_date"],
                "end_date": query["end_date"],
                "last_refreshed_datetime": query["end_date"],
                "page": page,
                "total_items": len(rows),
                "total_pages": total_pages,
                "links": [],
            }
        )


@contextmanager
def running_fake_paypal_reporting() -> Iterator[FakePayPalReporting]:
    fake = FakePayPalReporting()
    with serving(fake.handle) as url:
        fake.url = url
        yield fake
