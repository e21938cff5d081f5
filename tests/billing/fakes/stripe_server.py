"""A local fake of the few Stripe endpoints the back-office calls, at the HTTP layer.

Runs ``http.server`` in a thread on 127.0.0.1 and answers with the documented shapes of
https://docs.stripe.com/api/payment_intents (object, list, search, errors). It replays the
first answer for a repeated Idempotency-Key, as Stripe does, and records every request.

Behaviours for the next charges are queued with ``fake.queue(...)``: "succeed" (default),
"decline" (402 card_error with a decline code), "timeout" (the intent is created and charged,
but the answer comes after the client gave up), "processing", "server_error" (500).

Refunds (https://docs.stripe.com/api/refunds): POST /v1/refunds, GET /v1/refunds/{id} and
GET /v1/refunds (by charge, payment_intent or created). Behaviours for the next refunds are
queued with ``fake.queue_refund(...)``: "succeed" (default), "refuse" (400
invalid_request_error with a code), "fail" (created with status failed and a failure_reason),
"pending", "timeout" (refunded, the answer comes too late) and "server_error" (500, nothing
refunded). Stripe's own checks apply: no more than what is left of the charge.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from tests.billing.fakes.stripe_checkout import CheckoutMixin

DECLINE_MESSAGES = {
    "generic_decline": "Your card was declined.",
    "insufficient_funds": "Your card has insufficient funds.",
    "authentication_required": "Your card was declined. This transaction requires authentication.",
}


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    params: dict[str, Any]


@dataclass
class Behaviour:
    kind: str = "succeed"
    code: str = "card_declined"
    decline_code: str | None = None


@dataclass
class RefundBehaviour:
    kind: str = "succeed"
    code: str = "charge_already_refunded"
    failure_reason: str = "expired_or_canceled_card"


def parse_form(body: str) -> dict[str, Any]:
    """Stripe's form encoding (``metadata[key]=v``, ``created[gte]=1``) to nested dicts."""
    out: dict[str, Any] = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        parts = re.findall(r"[^\[\]]+", key)
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


@dataclass
class FakeStripe(CheckoutMixin):
    timeout_sleep: float = 1.5
    intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    behaviours: deque[Behaviour] = field(default_factory=deque)
    # What charges of one saved card (its pm_ id) do, before the queue: charges made
    # together (autopay) reach the fake in any order.
    card_behaviours: dict[str, deque[Behaviour]] = field(default_factory=dict)
    refund_behaviours: deque[RefundBehaviour] = field(default_factory=deque)
    idempotent: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    counter: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    url: str = ""
    # Checkout (``stripe_checkout``): sessions, and where the events of a payment are sent.
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    setup_intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    payment_methods: dict[str, dict[str, Any]] = field(default_factory=dict)
    events_sent: list[dict[str, Any]] = field(default_factory=list)
    webhook_url: str = ""
    webhook_secret: str = ""
    webhook_delay: float = 0.5

    # --- test controls -------------------------------------------------------------------
    def queue(
        self,
        kind: str,
        *,
        code: str = "card_declined",
        decline_code: str | None = None,
        payment_method: str = "",
    ) -> None:
        behaviour = Behaviour(kind, code, decline_code)
        if payment_method:
            self.card_behaviours.setdefault(payment_method, deque()).append(behaviour)
        else:
            self.behaviours.append(behaviour)

    def queue_refund(
        self,
        kind: str,
        *,
        code: str = "charge_already_refunded",
        failure_reason: str = "expired_or_canceled_card",
    ) -> None:
        self.refund_behaviours.append(RefundBehaviour(kind, code, failure_reason))

    def charges(self) -> list[Recorded]:
        return [r for r in self.requests if r.method == "POST" and r.path == "/v1/payment_intents"]

    def refund_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.method == "POST" and r.path == "/v1/refunds"]

    def refund_in_dashboard(self, charge_id: str, amount_minor: int, **fields: Any) -> dict:
        """A refund made in the Stripe dashboard (no request of ours): it exists at Stripe."""
        intent = self._intent_of(charge_id)
        assert intent is not None, charge_id
        return self.create_refund(
            intent, {"amount": amount_minor, "reason": "requested_by_customer", **fields}
        )

    def charge_object(self, charge_id: str, *, embed_refunds: bool = True) -> dict:
        """The Charge as a charge.refunded event carries it; API versions from 2022-11-15 on
        leave its refunds out (``embed_refunds=False``)."""
        intent = self._intent_of(charge_id)
        assert intent is not None, charge_id
        refunds = [r for r in self.refunds.values() if r["payment_intent"] == intent["id"]]
        refunded = sum(r["amount"] for r in refunds if r["status"] in ("succeeded", "pending"))
        charge = {
            "id": intent["latest_charge"],
            "object": "charge",
            "amount": intent["amount"],
            "amount_captured": intent["amount"],
            "amount_refunded": refunded,
            "captured": True,
            "created": intent["created"],
            "currency": intent["currency"],
            "customer": intent["customer"],
            "livemode": False,
            "metadata": dict(intent["metadata"]),
            "paid": True,
            "payment_intent": intent["id"],
            "refunded": refunded == intent["amount"],
            "status": "succeeded",
        }
        if embed_refunds:
            charge["refunds"] = {
                "object": "list",
                "data": sorted(refunds, key=lambda r: r["id"], reverse=True),
                "has_more": False,
                "url": f"/v1/charges/{intent['latest_charge']}/refunds",
            }
        return charge

    def _intent_of(self, charge_or_intent: str) -> dict[str, Any] | None:
        for intent in self.intents.values():
            if charge_or_intent in (intent["id"], intent["latest_charge"]):
                return intent
        return None

    def create_refund(
        self, intent: dict[str, Any], params: dict[str, Any], *, status: str = "succeeded"
    ) -> dict:
        n = next(self.counter)
        refund = {
            "id": f"re_fake{n:06d}",
            "object": "refund",
            "amount": int(params.get("amount") or intent["amount"]),
            "balance_transaction": f"txn_fake{n:06d}",
            "charge": intent["latest_charge"],
            "created": int(time.time()),
            "currency": intent["currency"],
            "destination_details": {"card": {"type": "refund"}, "type": "card"},
            "failure_reason": None,
            "metadata": dict(params.get("metadata") or {}),
            "payment_intent": intent["id"],
            "reason": params.get("reason"),
            "receipt_number": None,
            "status": status,
        }
        with self.lock:
            self.refunds[refund["id"]] = refund
        return refund

    def set_status(self, intent_id: str, status: str, *, decline_code: str = "") -> dict:
        with self.lock:
            intent = self.intents[intent_id]
            intent["status"] = status
            if status == "succeeded":
                intent["latest_charge"] = intent["latest_charge"] or f"ch_{intent_id[3:]}"
                intent["amount_received"] = intent["amount"]
                intent["last_payment_error"] = None
            elif status == "requires_payment_method":
                intent["last_payment_error"] = _payment_error(
                    "card_declined", decline_code or "generic_decline"
                )
            return dict(intent)

    def create_intent(self, params: dict[str, Any], *, status: str = "succeeded") -> dict:
        n = next(self.counter)
        intent_id = f"pi_fake{n:06d}"
        intent = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": int(params["amount"]),
            "amount_received": int(params["amount"]) if status == "succeeded" else 0,
            "capture_method": "automatic",
            "confirmation_method": "automatic",
            "created": int(time.time()),
            "currency": params["currency"],
            "customer": params.get("customer"),
            "description": params.get("description"),
            "last_payment_error": None,
            "latest_charge": f"ch_fake{n:06d}" if status == "succeeded" else None,
            "livemode": False,
            "metadata": dict(params.get("metadata") or {}),
            "payment_method": params.get("payment_method"),
            "payment_method_types": ["card"],
            "status": status,
        }
        with self.lock:
            self.intents[intent_id] = intent
        return intent

    # --- server ---------------------------------------------------------------------------
    def handle(self, method: str, path: str, query: str, headers: dict[str, str], body: str):
        params = parse_form(body if method == "POST" else query)
        with self.lock:
            self.requests.append(Recorded(method, path, headers, params))
        if path.startswith("/c/pay/"):  # the payer's page: a browser, no API key
            return self.checkout_page(method, path, body)
        if headers.get("authorization", "") != "Bearer sk_test_fake":
            return 401, _error("invalid_request_error", "Invalid API Key provided.")
        if method == "POST" and path == "/v1/payment_intents":
            key = headers.get("idempotency-key")
            with self.lock:
                if key and key in self.idempotent:
                    return self.idempotent[key]
            answer, sleep = self._charge(params)
            if key:
                with self.lock:
                    self.idempotent[key] = answer
            if sleep:
                time.sleep(sleep)
            return answer
        if path.startswith("/v1/checkout/sessions"):
            return self.checkout_api(method, path, headers, params)
        if method == "POST" and path == "/v1/customers":
            return self.customer_api(params)
        if path.startswith(("/v1/setup_intents/", "/v1/payment_methods/")):
            return self.setup_api(method, path)
        if method == "POST" and path == "/v1/refunds":
            key = headers.get("idempotency-key")
            with self.lock:
                if key and key in self.idempotent:
                    return self.idempotent[key]
            answer, sleep = self._refund(params)
            if key and answer[0] < 500:
                with self.lock:
                    self.idempotent[key] = answer
            if sleep:
                time.sleep(sleep)
            return answer
        if method == "GET" and path == "/v1/refunds":
            return 200, self._refund_list(params)
        match = re.fullmatch(r"/v1/refunds/([A-Za-z0-9_]+)", path)
        if method == "GET" and match:
            refund = self.refunds.get(match.group(1))
            if refund is None:
                return 404, _error(
                    "invalid_request_error",
                    f"No such refund: '{match.group(1)}'",
                    code="resource_missing",
                )
            return 200, json.dumps(refund).encode()
        if method == "GET" and path == "/v1/payment_intents":
            return 200, self._list(params)
        if method == "GET" and path == "/v1/payment_intents/search":
            return 200, self._search(params.get("query", ""))
        match = re.fullmatch(r"/v1/payment_intents/([A-Za-z0-9_]+)", path)
        if method == "GET" and match:
            intent = self.intents.get(match.group(1))
            if intent is None:
                return 404, _error(
                    "invalid_request_error",
                    f"No such payment_intent: '{match.group(1)}'",
                    code="resource_missing",
                )
            return 200, json.dumps(intent).encode()
        return 404, _error("invalid_request_error", f"Unrecognized request URL ({path}).")

    def _charge(self, params: dict[str, Any]) -> tuple[tuple[int, bytes], float]:
        own = self.card_behaviours.get(params.get("payment_method") or "")
        if own:
            behaviour = own.popleft()
        else:
            behaviour = self.behaviours.popleft() if self.behaviours else Behaviour()
        if behaviour.kind == "server_error":
            return (500, _error("api_error", "An unknown error occurred.")), 0
        if behaviour.kind == "decline":
            intent = self.create_intent(params, status="requires_payment_method")
            n = intent["id"][len("pi_fake") :]
            error = _payment_error(behaviour.code, behaviour.decline_code)
            intent["last_payment_error"] = error
            body = {
                "error": {
                    **error,
                    "charge": f"ch_fake{n}",
                    "payment_intent": intent,
                    "request_log_url": "https://dashboard.stripe.com/test/logs/req_fake",
                }
            }
            return (402, json.dumps(body).encode()), 0
        status = "processing" if behaviour.kind == "processing" else "succeeded"
        intent = self.create_intent(params, status=status)
        sleep = self.timeout_sleep if behaviour.kind == "timeout" else 0
        return (200, json.dumps(intent).encode()), sleep

    def _refund(self, params: dict[str, Any]) -> tuple[tuple[int, bytes], float]:
        behaviour = self.refund_behaviours.popleft() if self.refund_behaviours else None
        behaviour = behaviour or RefundBehaviour()
        if behaviour.kind == "server_error":
            return (500, _error("api_error", "An unknown error occurred.")), 0
        target = params.get("payment_intent") or params.get("charge") or ""
        intent = self._intent_of(target)
        if intent is None or intent["status"] != "succeeded":
            return (
                400,
                _error(
                    "invalid_request_error",
                    f"No such charge: '{target}'",
                    code="resource_missing",
                ),
            ), 0
        if behaviour.kind == "refuse":
            message = {
                "charge_already_refunded": f"Charge {intent['latest_charge']} has already been "
                "refunded.",
                "charge_disputed": f"Charge {intent['latest_charge']} has been charged back; "
                "cannot issue a refund.",
            }.get(behaviour.code, "The refund was refused.")
            return (400, _error("invalid_request_error", message, code=behaviour.code)), 0
        amount = int(params.get("amount") or 0) or intent["amount"]
        refunded = sum(
            r["amount"]
            for r in self.refunds.values()
            if r["payment_intent"] == intent["id"] and r["status"] in ("succeeded", "pending")
        )
        if amount > intent["amount"] - refunded:
            code = "charge_already_refunded" if refunded >= intent["amount"] else "amount_too_large"
            message = (
                f"Refund amount ({amount}) is greater than unrefunded amount on charge "
                f"({intent['amount'] - refunded})"
            )
            return (400, _error("invalid_request_error", message, code=code)), 0
        status = {"fail": "failed", "pending": "pending"}.get(behaviour.kind, "succeeded")
        refund = self.create_refund(intent, {**params, "amount": amount}, status=status)
        if status == "failed":
            refund["failure_reason"] = behaviour.failure_reason
        sleep = self.timeout_sleep if behaviour.kind == "timeout" else 0
        return (200, json.dumps(refund).encode()), sleep

    def _refund_list(self, params: dict[str, Any]) -> bytes:
        created = params.get("created") or {}
        gte = int(created.get("gte", 0)) if isinstance(created, dict) else 0
        rows = sorted(self.refunds.values(), key=lambda r: r["id"], reverse=True)
        rows = [
            r
            for r in rows
            if r["created"] >= gte
            and (not params.get("charge") or r["charge"] == params["charge"])
            and (
                not params.get("payment_intent") or r["payment_intent"] == params["payment_intent"]
            )
        ]
        if params.get("starting_after"):
            ids = [r["id"] for r in rows]
            rows = rows[ids.index(params["starting_after"]) + 1 :]
        limit = int(params.get("limit", 10))
        return json.dumps(
            {
                "object": "list",
                "data": rows[:limit],
                "has_more": len(rows) > limit,
                "url": "/v1/refunds",
            }
        ).encode()

    def _list(self, params: dict[str, Any]) -> bytes:
        created = params.get("created") or {}
        gte = int(created.get("gte", 0)) if isinstance(created, dict) else 0
        rows = sorted(self.intents.values(), key=lambda i: i["id"], reverse=True)
        rows = [
            i
            for i in rows
            if i["created"] >= gte
            and (not params.get("customer") or i["customer"] == params["customer"])
        ]
        if params.get("starting_after"):
            ids = [i["id"] for i in rows]
            rows = rows[ids.index(params["starting_after"]) + 1 :]
        limit = int(params.get("limit", 10))
        page = rows[:limit]
        return json.dumps(
            {
                "object": "list",
                "data": page,
                "has_more": len(rows) > limit,
                "url": "/v1/payment_intents",
            }
        ).encode()

    def _search(self, query: str) -> bytes:
        match = re.fullmatch(r"metadata\['([^']+)'\]:'([^']*)'", unquote(query).strip())
        rows = [
            i
            for i in self.intents.values()
            if match and i["metadata"].get(match.group(1)) == match.group(2)
        ]
        return json.dumps(
            {
                "object": "search_result",
                "data": rows,
                "has_more": False,
                "next_page": None,
                "url": "/v1/payment_intents/search",
            }
        ).encode()


def _payment_error(code: str, decline_code: str | None) -> dict[str, Any]:
    message = DECLINE_MESSAGES.get(decline_code or "generic_decline", "Your card was declined.")
    error = {
        "type": "card_error",
        "code": code,
        "message": message,
        "doc_url": f"https://docs.stripe.com/error-codes/{code.replace('_', '-')}",
    }
    if decline_code:
        error["decline_code"] = decline_code
    return error


def _error(kind: str, message: str, *, code: str | None = None) -> bytes:
    error: dict[str, Any] = {"type": kind, "message": message}
    if code:
        error["code"] = code
    return json.dumps({"error": error}).encode()


def _handler(fake: FakeStripe) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self, method: str) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, payload, *extra = fake.handle(method, parts.path, parts.query, headers, body)
            more = {"Content-Type": "application/json", **(extra[0] if extra else {})}
            try:
                self.send_response(status)
                for name, value in more.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("Request-Id", f"req_fake{next(fake.counter)}")
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def running_fake_stripe(**kwargs: Any) -> Iterator[FakeStripe]:
    fake = FakeStripe(**kwargs)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


def sign(payload: bytes | str, secret: str, timestamp: int | None = None) -> str:
    """The Stripe-Signature header exactly as Stripe computes it:
    ``t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>" keyed with the endpoint secret>``."""
    text = payload.decode() if isinstance(payload, bytes) else payload
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.{text}".encode(), hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def intent_event(intent: dict[str, Any], type_: str, *, event_id: str) -> dict[str, Any]:
    """A Stripe event envelope (https://docs.stripe.com/api/events/object) around an object."""
    return {
        "id": event_id,
        "object": "event",
        "api_version": "2025-09-30.clover",
        "created": int(time.time()),
        "data": {"object": intent},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": type_,
    }
