"""A local fake of Coinbase Commerce's charges API (``GET /charges/{code_or_id}``) at the HTTP
layer, and the settlement export ``reconciliation.payouts.coinbase_settlements`` reads.

The charge shape follows https://docs.cdp.coinbase.com/commerce/ (``data`` with ``id``,
``code``, ``pricing.local``, ``timeline[]``, ``payments[]`` with ``network``,
``transaction_id``, ``status`` and ``value.local``/``value.crypto``); ``net`` and
``coinbase_processing_fee`` on a payment are as Commerce charges carry them, not in the
current reference (assumed). The export shape is ours (documented in the module above).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tests.reconciliation.fakes.http import Answer, Recorded, dumps, serving

API_KEY = "cc-fake-api-key"


def charge(
    code: str,
    value: str,
    fee: str,
    *,
    currency: str = "USD",
    status: str = "COMPLETED",
    net: str | None = None,
) -> dict[str, Any]:
    """A charge paid by one confirmed payment of ``value`` with Coinbase's ``fee``."""
    from decimal import Decimal

    net_value = net if net is not None else str(Decimal(value) - Decimal(fee))
    return {
        "id": f"00000000-0000-4000-8000-{code.lower():0>12}"[:36],
        "resource": "charge",
        "code": code,
        "name": f"Invoice {code}",
        "pricing_type": "fixed_price",
        "pricing": {"local": {"amount": value, "currency": currency}},
        "created_at": "2025-11-18T10:00:00Z",
        "expires_at": "2025-11-18T11:00:00Z",
        "timeline": [
            {"time": "2025-11-18T10:00:00Z", "status": "NEW"},
            {"time": "2025-11-18T10:05:00Z", "status": "PENDING"},
            {"time": "2025-11-18T10:20:00Z", "status": status},
        ],
        "payments": [
            {
                "network": "ethereum",
                "transaction_id": f"0xfake{code.lower()}",
                "status": "CONFIRMED",
                "detected_at": "2025-11-18T10:05:00Z",
                "value": {
                    "local": {"amount": value, "currency": currency},
                    "crypto": {"amount": "0.05", "currency": "ETH"},
                },
                "net": {"local": {"amount": net_value, "currency": currency}},
                "coinbase_processing_fee": {"local": {"amount": fee, "currency": currency}},
                "block": {"height": 100, "hash": "0xblock", "confirmations": 12},
            }
        ],
        "metadata": {},
    }


def export(
    settlement_id: str,
    amount: str,
    codes: list[str],
    refunds: list[dict[str, Any]] | None = None,
    *,
    status: str = "completed",
    currency: str = "USD",
    settled_at: str = "2025-11-20T12:00:00Z",
) -> bytes:
    return json.dumps(
        {
            "settlement": {
                "id": settlement_id,
                "status": status,
                "currency": currency,
                "amount": amount,
                "settled_at": settled_at,
            },
            "charges": [{"code": c} for c in codes],
            "refunds": refunds or [],
        }
    ).encode()


def refund(refund_id: str, charge_code: str, amount: str, fee: str = "0.00") -> dict[str, Any]:
    return {
        "id": refund_id,
        "charge_code": charge_code,
        "amount": {"amount": amount, "currency": "USD"},
        "fee": {"amount": fee, "currency": "USD"},
    }


@dataclass
class FakeCoinbaseCommerce:
    charges: dict[str, dict[str, Any]] = field(default_factory=dict)
    failing: bool = False
    requests: list[Recorded] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def add(self, *charges: dict[str, Any]) -> None:
        for c in charges:
            self.charges[c["code"]] = c

    def handle(self, request: Recorded) -> Answer:
        with self.lock:
            self.requests.append(request)
            if request.headers.get("x-cc-api-key") != API_KEY:
                return 401, dumps(
                    {"error": {"type": "authorization_error", "message": "No such API key."}}
                )
            if self.failing:
                return 503, dumps(
                    {"error": {"type": "service_unavailable", "message": "Try again later."}}
                )
            if request.method == "GET" and request.path.startswith("/charges/"):
                key = request.path.rsplit("/", 1)[1]
                found = self.charges.get(key) or next(
                    (c for c in self.charges.values() if c["id"] == key), None
                )
                if found is None:
                    return 404, dumps({"error": {"type": "not_found", "message": "Not found"}})
                return 200, dumps({"data": found, "warnings": []})
            return 404, dumps({"error": {"type": "not_found", "message": "Not found"}})


@contextmanager
def running_fake_coinbase_commerce() -> Iterator[FakeCoinbaseCommerce]:
    fake = FakeCoinbaseCommerce()
    with serving(fake.handle) as url:
        fake.url = url
        yield fake
