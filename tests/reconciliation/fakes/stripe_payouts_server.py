"""A local fake of Stripe's payouts and balance transactions at the HTTP layer.

Shapes follow https://docs.stripe.com/api/payouts and
https://docs.stripe.com/api/balance_transactions (the list objects, ``starting_after`` paging,
``expand[]=data.source``, the ``payout`` filter that includes the payout's own balance
transaction, errors). Objects are plain dicts, so tests can serve the real-shaped files of
``../shared/data/stripe`` as they are. Errors for the next requests: ``queue_error(kind)``.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tests.reconciliation.fakes.http import Answer, Recorded, dumps, serving

API_KEY = "sk_test_fake"

ERRORS: dict[str, tuple[int, str, str]] = {
    "server_error": (500, "api_error", "An unknown error occurred."),
    "rate_limit": (429, "rate_limit_error", "Too many requests made to the API too quickly."),
}


def balance_transaction(
    txn_id: str,
    type_: str,
    amount: int,
    fee: int = 0,
    *,
    source: str | None,
    currency: str = "usd",
    reporting_category: str | None = None,
    net: int | None = None,
    created: int = 1_763_900_000,
    description: str | None = None,
    fee_type: str = "stripe_fee",
) -> dict[str, Any]:
    """A BalanceTransaction; ``net`` is ``amount - fee`` unless given (to break it)."""
    return {
        "id": txn_id,
        "object": "balance_transaction",
        "amount": amount,
        "available_on": created + 2 * 86_400,
        "created": created,
        "currency": currency,
        "description": description,
        "exchange_rate": None,
        "fee": fee,
        "fee_details": (
            [
                {
                    "amount": fee,
                    "application": None,
                    "currency": currency,
                    "description": "Stripe processing fees",
                    "type": fee_type,
                }
            ]
            if fee
            else []
        ),
        "net": amount - fee if net is None else net,
        "reporting_category": reporting_category or type_,
        "source": source,
        "status": "available",
        "type": type_,
    }


def payout_object(
    payout_id: str,
    amount: int,
    *,
    arrival_date: int,
    currency: str = "usd",
    status: str = "paid",
    automatic: bool = True,
) -> dict[str, Any]:
    return {
        "id": payout_id,
        "object": "payout",
        "amount": amount,
        "arrival_date": arrival_date,
        "automatic": automatic,
        "balance_transaction": f"txn_{payout_id}",
        "created": arrival_date - 2 * 86_400,
        "currency": currency,
        "description": "STRIPE PAYOUT",
        "destination": "ba_1Fake0000000000000000000",
        "failure_balance_transaction": None,
        "failure_code": None,
        "failure_message": None,
        "livemode": False,
        "metadata": {},
        "method": "standard",
        "original_payout": None,
        "reversed_by": None,
        "source_type": "card",
        "statement_descriptor": None,
        "status": status,
        "type": "bank_account",
    }


@dataclass
class FakeStripePayouts:
    payouts: dict[str, dict[str, Any]] = field(default_factory=dict)
    # payout id -> its balance transactions, newest first as Stripe lists them.
    transactions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # charges, refunds, disputes by id, for expand[]=data.source.
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: deque[str] = field(default_factory=deque)
    requests: list[Recorded] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    counter: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    url: str = ""

    def add_payout(
        self,
        payout: dict[str, Any],
        transactions: list[dict[str, Any]],
        *,
        with_own_transaction: bool = True,
    ) -> None:
        """The payout and what it pays out; Stripe also lists the payout's own transaction."""
        rows = list(transactions)
        if with_own_transaction:
            rows.append(
                balance_transaction(
                    payout["balance_transaction"] or f"txn_{payout['id']}",
                    "payout",
                    -int(payout["amount"]),
                    source=payout["id"],
                    currency=payout["currency"],
                    created=payout["created"],
                    description="STRIPE PAYOUT",
                )
            )
        self.payouts[payout["id"]] = payout
        self.transactions[payout["id"]] = sorted(rows, key=lambda t: t["created"], reverse=True)

    def add_source(self, *objects: dict[str, Any]) -> None:
        for obj in objects:
            self.sources[obj["id"]] = obj

    def queue_error(self, *kinds: str) -> None:
        self.errors.extend(kinds)

    def handle(self, request: Recorded) -> Answer:
        with self.lock:
            self.requests.append(request)
            if request.headers.get("authorization") != f"Bearer {API_KEY}":
                return 401, _error("invalid_request_error", "Invalid API Key provided: sk_***")
            if self.errors:
                status, kind, message = ERRORS[self.errors.popleft()]
                return status, _error(kind, message)
            query = request.query
            if request.method == "GET" and request.path == "/v1/payouts":
                return 200, self._payouts(query)
            if request.method == "GET" and request.path.startswith("/v1/payouts/"):
                payout = self.payouts.get(request.path.rsplit("/", 1)[1])
                if payout is None:
                    message = f"No such payout: '{request.path.rsplit('/', 1)[1]}'"
                    return 404, _error("invalid_request_error", message, code="resource_missing")
                return 200, dumps(payout)
            if request.method == "GET" and request.path == "/v1/balance_transactions":
                return self._balance_transactions(query)
            message = f"Unrecognized request URL (GET: {request.path})."
            return 404, _error("invalid_request_error", message)

    def _payouts(self, query: dict[str, Any]) -> bytes:
        arrival = query.get("arrival_date") or {}
        gte = int(arrival.get("gte", 0))
        lt = int(arrival.get("lt", 2**63))
        rows = sorted(self.payouts.values(), key=lambda p: (p["created"], p["id"]), reverse=True)
        rows = [
            p
            for p in rows
            if gte <= p["arrival_date"] < lt
            and (not query.get("status") or p["status"] == query["status"])
        ]
        return _page(rows, query, "/v1/payouts")

    def _balance_transactions(self, query: dict[str, Any]) -> Answer:
        payout_id = query.get("payout")
        if payout_id and payout_id not in self.payouts:
            message = f"No such payout: '{payout_id}'"
            return 400, _error("invalid_request_error", message, code="resource_missing")
        if payout_id and not self.payouts[payout_id]["automatic"]:
            message = (
                "Balance transaction history can only be filtered on automatic transfers, not "
                "manual."
            )
            return 400, _error("invalid_request_error", message)
        rows = self.transactions.get(payout_id, []) if payout_id else []
        expand = set((query.get("expand") or {}).values())
        if "data.source" in expand:
            rows = [{**t, "source": self.sources.get(t["source"], t["source"])} for t in rows]
        return 200, _page(rows, query, "/v1/balance_transactions")


def _page(rows: list[dict[str, Any]], query: dict[str, Any], url: str) -> bytes:
    if query.get("starting_after"):
        ids = [r["id"] for r in rows]
        rows = rows[ids.index(query["starting_after"]) + 1 :]
    limit = int(query.get("limit", 10))
    return dumps(
        {"object": "list", "data": rows[:limit], "has_more": len(rows) > limit, "url": url}
    )


def _error(kind: str, message: str, *, code: str | None = None) -> bytes:
    error: dict[str, Any] = {"type": kind, "message": message}
    if code:
        error["code"] = code
    return dumps({"error": error})


@contextmanager
def running_fake_stripe_payouts() -> Iterator[FakeStripePayouts]:
    fake = FakeStripePayouts()
    with serving(fake.handle) as url:
        fake.url = url
        yield fake
