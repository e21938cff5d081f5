"""A local fake of the PayPal REST endpoints the back-office calls, at the HTTP layer.

Runs ``http.server`` in a thread on 127.0.0.1 and answers with the documented shapes of
https://developer.paypal.com/docs/api/orders/v2/ (orders, captures, errors with ``details``)
and of the OAuth2 token and verify-webhook-signature endpoints, and of the Payment Method
Tokens v3 (https://developer.paypal.com/docs/api/payment-tokens/v3/): setup tokens approved by
the payer (``approve_setup``), exchanged for payment tokens, and orders charged on a payment
token (``payment_source.paypal.vault_id``), completed at once. A repeated PayPal-Request-Id
gets the first answer again, as PayPal does; every request is recorded.

Webhook signatures: the fake signs ``transmission_id|time|webhook_id|crc32(event)`` with its
own key (PayPal signs the same string with RSA) and remembers the transmission ids it issued;
verify-webhook-signature says SUCCESS only for one of those, with a signature matching the
event received, the webhook id and the transmission headers.

Behaviours for the next order creations or captures are queued with ``fake.queue(...)``:
"succeed" (default), "timeout" (done, but answered after the client gave up),
"server_error" (500, nothing done), "decline" (422 INSTRUMENT_DECLINED), "decline:ISSUE" (422
with that issue, e.g. "decline:PAYER_ACCOUNT_LOCKED_OR_CLOSED"), and for a charge of a saved
wallet "pending" (the capture PENDING) or "capture_declined" (the capture DECLINED).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import re
import threading
import time
import zlib
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

CLIENT_ID = "fake-client-id"
CLIENT_SECRET = "fake-client-secret"
WEBHOOK_ID = "8PT597110X687430LKGECATA"
CERT_URL = "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594"
NO_DECIMALS = {"HUF", "JPY", "TWD"}


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


def canonical(event: Any) -> bytes:
    return json.dumps(event, sort_keys=True, separators=(",", ":")).encode()


@dataclass
class FakePayPal:
    timeout_sleep: float = 1.0
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    behaviours: deque[str] = field(default_factory=deque)
    idempotent: dict[tuple[str, str], tuple[int, bytes]] = field(default_factory=dict)
    tokens: set[str] = field(default_factory=set)
    transmissions: set[str] = field(default_factory=set)
    setup_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    payment_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    vault_answers: dict[tuple[str, str], tuple[int, bytes]] = field(default_factory=dict)
    signing_key: bytes = b"fake-paypal-signing-key"
    lock: threading.Lock = field(default_factory=threading.Lock)
    counter: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    url: str = ""

    # --- test controls -------------------------------------------------------------------
    def queue(self, kind: str) -> None:
        self.behaviours.append(kind)

    def calls(self, method: str, pattern: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and re.fullmatch(pattern, r.path)]

    def order_creations(self) -> list[Recorded]:
        return self.calls("POST", r"/v2/checkout/orders")

    def captures(self) -> list[Recorded]:
        return self.calls("POST", r"/v2/checkout/orders/[^/]+/capture")

    def wallet_charges(self) -> list[Recorded]:
        return [
            r
            for r in self.order_creations()
            if ((r.body or {}).get("payment_source") or {}).get("paypal", {}).get("vault_id")
        ]

    def approve_setup(self, setup_token_id: str, *, email: str = "buyer@example.com") -> None:
        """The payer approves saving the wallet on PayPal's page."""
        with self.lock:
            setup = self.setup_tokens[setup_token_id]
            setup["status"] = "APPROVED"
            setup["payment_source"]["paypal"].update(
                {"email_address": email, "payer_id": "QYR5Z8XDVJNXQ"}
            )

    def approve(self, order_id: str) -> None:
        """The payer approves the order on PayPal's page."""
        with self.lock:
            order = self.orders[order_id]
            order["status"] = "APPROVED"
            order["payer"] = {
                "payer_id": "QYR5Z8XDVJNXQ",
                "email_address": "buyer@example.com",
                "name": {"given_name": "Test", "surname": "Buyer"},
            }

    def sign(self, event: dict[str, Any], *, webhook_id: str = WEBHOOK_ID) -> dict[str, str]:
        """The transmission headers PayPal sends with ``event``, for our webhook id."""
        transmission_id = f"{next(self.counter):08d}-fake-transmission"
        transmission_time = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        with self.lock:
            self.transmissions.add(transmission_id)
        return {
            "PAYPAL-TRANSMISSION-ID": transmission_id,
            "PAYPAL-TRANSMISSION-TIME": transmission_time,
            "PAYPAL-TRANSMISSION-SIG": self._signature(
                transmission_id, transmission_time, webhook_id, event
            ),
            "PAYPAL-CERT-URL": CERT_URL,
            "PAYPAL-AUTH-ALGO": "SHA256withRSA",
        }

    def _signature(self, tid: str, ttime: str, webhook_id: str, event: Any) -> str:
        message = f"{tid}|{ttime}|{webhook_id}|{zlib.crc32(canonical(event))}"
        mac = hmac.new(self.signing_key, message.encode(), hashlib.sha256).digest()
        return base64.b64encode(mac).decode()

    # --- server ---------------------------------------------------------------------------
    def handle(self, method: str, path: str, headers: dict[str, str], raw: str):
        if path == "/v1/oauth2/token":
            with self.lock:
                self.requests.append(Recorded(method, path, headers, dict(parse_qsl(raw))))
            return self._token(headers, raw)
        body = json.loads(raw) if raw else None
        with self.lock:
            self.requests.append(Recorded(method, path, headers, body))
        bearer = headers.get("authorization", "").removeprefix("Bearer ")
        if bearer not in self.tokens:
            return 401, json.dumps(
                {"error": "invalid_token", "error_description": "Token signature verification"}
            ).encode()
        if method == "POST" and path == "/v1/notifications/verify-webhook-signature":
            return 200, json.dumps({"verification_status": self._verify(body or {})}).encode()
        request_id = headers.get("paypal-request-id", "")
        if method == "POST" and path == "/v2/checkout/orders":
            return self._idempotent(
                ("create", request_id), lambda status: self._create(body or {}, status)
            )
        if path.startswith("/v3/vault/"):
            return self._vault(method, path, request_id, body or {})
        match = re.fullmatch(r"/v2/checkout/orders/([A-Z0-9]+)(/capture)?", path)
        if match and method == "POST" and match.group(2):
            order_id = match.group(1)
            return self._idempotent(("capture", request_id), lambda _: self._capture(order_id))
        if match and method == "GET" and not match.group(2):
            order = self.orders.get(match.group(1))
            if order is None:
                return _error(404, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID")[0]
            return 200, json.dumps(order).encode()
        return _error(404, "NOT_FOUND", "INVALID_RESOURCE_ID")[0]

    def _token(self, headers: dict[str, str], raw: str):
        expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if headers.get("authorization") != f"Basic {expected}":
            return 401, json.dumps(
                {"error": "invalid_client", "error_description": "Client Authentication failed"}
            ).encode()
        if dict(parse_qsl(raw)).get("grant_type") != "client_credentials":
            return 400, json.dumps({"error": "unsupported_grant_type"}).encode()
        token = f"A21AAfake{next(self.counter):06d}"
        with self.lock:
            self.tokens.add(token)
        return 200, json.dumps(
            {
                "scope": "https://uri.paypal.com/services/payments/payment",
                "access_token": token,
                "token_type": "Bearer",
                "app_id": "APP-80W284485P519543T",
                "expires_in": 32400,
                "nonce": "2025-01-01T00:00:00Zfake",
            }
        ).encode()

    def _idempotent(self, key: tuple[str, str], act: Any):
        with self.lock:
            if key[1] and key in self.idempotent:
                return self.idempotent[key]
        behaviour = self.behaviours.popleft() if self.behaviours else "succeed"
        if behaviour == "server_error":
            return _error(500, "INTERNAL_SERVER_ERROR", "INTERNAL_SERVICE_ERROR")[0]
        if behaviour == "decline":
            return _error(422, "UNPROCESSABLE_ENTITY", "INSTRUMENT_DECLINED")[0]
        if behaviour.startswith("decline:"):
            return _error(422, "UNPROCESSABLE_ENTITY", behaviour.split(":", 1)[1])[0]
        answer, done = act(
            {"pending": "PENDING", "capture_declined": "DECLINED"}.get(behaviour, "COMPLETED")
        )
        if key[1] and done:
            with self.lock:
                self.idempotent[key] = answer
        if behaviour == "timeout":
            time.sleep(self.timeout_sleep)
        return answer

    def _vault(self, method: str, path: str, request_id: str, body: dict[str, Any]):
        if method == "POST" and path in ("/v3/vault/setup-tokens", "/v3/vault/payment-tokens"):
            key = (path, request_id)
            with self.lock:
                if request_id and key in self.vault_answers:
                    return self.vault_answers[key]
            if path.endswith("setup-tokens"):
                answer = self._setup_create(body)
            else:
                answer = self._token_create(body)
            if request_id and answer[0] in (200, 201):
                with self.lock:
                    self.vault_answers[key] = answer
            return answer
        match = re.fullmatch(r"/v3/vault/(setup|payment)-tokens/([A-Za-z0-9]+)", path)
        if not match:
            return _error(404, "NOT_FOUND", "INVALID_RESOURCE_ID")[0]
        store = self.setup_tokens if match.group(1) == "setup" else self.payment_tokens
        with self.lock:
            found = store.get(match.group(2))
            if found is None:
                return _error(404, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID")[0]
            if method == "GET":
                return 200, json.dumps(found).encode()
            if method == "DELETE" and match.group(1) == "payment":
                del store[match.group(2)]
                return 204, b""
        return _error(405, "METHOD_NOT_SUPPORTED", "METHOD_NOT_SUPPORTED")[0]

    def _setup_create(self, body: dict[str, Any]):
        wallet = (body.get("payment_source") or {}).get("paypal") or {}
        context = wallet.get("experience_context") or {}
        if wallet.get("usage_type") != "MERCHANT" or not context.get("return_url"):
            return _error(400, "INVALID_REQUEST", "MISSING_REQUIRED_PARAMETER")[0]
        customer = dict(body.get("customer") or {})
        n = next(self.counter)
        customer.setdefault("id", f"customer{n:08d}")
        setup_id = f"5C{n:06d}VB2781612"
        setup = {
            "id": setup_id,
            "customer": customer,
            "status": "PAYER_ACTION_REQUIRED",
            "payment_source": {
                "paypal": {k: v for k, v in wallet.items() if k not in ("experience_context",)}
            },
            "links": [
                {
                    "href": "https://www.sandbox.paypal.com/agreements/approve"
                    f"?approval_session_id={setup_id}",
                    "rel": "approve",
                    "method": "GET",
                },
                {
                    "href": f"{self.url}/v3/vault/setup-tokens/{setup_id}",
                    "rel": "self",
                    "method": "GET",
                },
                {"href": f"{self.url}/v3/vault/payment-tokens", "rel": "confirm", "method": "POST"},
            ],
        }
        with self.lock:
            self.setup_tokens[setup_id] = setup
        return 201, json.dumps(setup).encode()

    def _token_create(self, body: dict[str, Any]):
        source = (body.get("payment_source") or {}).get("token") or {}
        with self.lock:
            setup = self.setup_tokens.get(str(source.get("id") or ""))
            if setup is None or source.get("type") != "SETUP_TOKEN":
                return _error(404, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID")[0]
            if setup["status"] != "APPROVED":
                return _error(422, "UNPROCESSABLE_ENTITY", "SETUP_TOKEN_NOT_APPROVED")[0]
            token_id = f"{next(self.counter):04d}tkn8451t"
            token = {
                "id": token_id,
                "customer": dict(setup["customer"]),
                "payment_source": {"paypal": dict(setup["payment_source"]["paypal"])},
                "links": [
                    {
                        "href": f"{self.url}/v3/vault/payment-tokens/{token_id}",
                        "rel": "self",
                        "method": "GET",
                    }
                ],
            }
            self.payment_tokens[token_id] = token
            setup["status"] = "VAULTED"
        return 201, json.dumps(token).encode()

    def _create(self, body: dict[str, Any], capture_status: str = "COMPLETED"):
        unit = (body.get("purchase_units") or [{}])[0]
        amount = unit.get("amount") or {}
        currency, value = amount.get("currency_code", ""), str(amount.get("value", ""))
        places = 0 if currency in NO_DECIMALS else 2
        pattern = r"\d{1,10}" if places == 0 else r"\d{1,10}(\.\d{1,2})?"
        if body.get("intent") != "CAPTURE" or not re.fullmatch(pattern, value):
            issue = "DECIMALS_NOT_SUPPORTED" if places == 0 else "DECIMAL_PRECISION"
            return _error(422, "UNPROCESSABLE_ENTITY", issue)[0], False
        vault_id = ((body.get("payment_source") or {}).get("paypal") or {}).get("vault_id")
        if vault_id:
            with self.lock:
                token = self.payment_tokens.get(str(vault_id))
            if token is None:
                return _error(422, "UNPROCESSABLE_ENTITY", "AGREEMENT_ALREADY_CANCELLED")[0], False
        n = next(self.counter)
        order_id = f"5O{n:06d}TN364715T"
        order = {
            "id": order_id,
            "intent": "CAPTURE",
            "status": "PAYER_ACTION_REQUIRED",
            "payment_source": {"paypal": {}},
            "purchase_units": [
                {
                    "reference_id": unit.get("reference_id", "default"),
                    "custom_id": unit.get("custom_id", ""),
                    "description": unit.get("description", ""),
                    "amount": {"currency_code": currency, "value": value},
                }
            ],
            "create_time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "links": [
                {
                    "href": f"{self.url}/v2/checkout/orders/{order_id}",
                    "rel": "self",
                    "method": "GET",
                },
                {
                    "href": f"https://www.sandbox.paypal.com/checkoutnow?token={order_id}",
                    "rel": "payer-action",
                    "method": "GET",
                },
            ],
        }
        with self.lock:
            self.orders[order_id] = order
        if vault_id:  # a saved wallet: completed at once, without the payer
            order["payment_source"] = {"paypal": dict(token["payment_source"]["paypal"])}
            order["links"] = order["links"][:1]
            with self.lock:
                self._complete(order, status=capture_status)
            return (201, json.dumps(order).encode()), True
        return (200, json.dumps(order).encode()), True

    def _capture(self, order_id: str):
        with self.lock:
            order = self.orders.get(order_id)
            if order is None:
                return _error(404, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID")[0], False
            if order["status"] == "COMPLETED":
                return _error(422, "UNPROCESSABLE_ENTITY", "ORDER_ALREADY_CAPTURED")[0], False
            if order["status"] != "APPROVED":
                return _error(422, "UNPROCESSABLE_ENTITY", "ORDER_NOT_APPROVED")[0], False
            self._complete(order, status="COMPLETED")
            return (201, json.dumps(order).encode()), True

    def _complete(self, order: dict[str, Any], *, status: str) -> None:
        """Capture the order (under the lock)."""
        order_id = order["id"]
        unit = order["purchase_units"][0]
        capture_id = f"3C{next(self.counter):06d}X54302744M"
        unit["payments"] = {
            "captures": [
                {
                    "id": capture_id,
                    "status": status,
                    "amount": dict(unit["amount"]),
                    "final_capture": True,
                    "custom_id": unit.get("custom_id", ""),
                    "create_time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "links": [
                        {
                            "href": f"{self.url}/v2/checkout/orders/{order_id}",
                            "rel": "up",
                            "method": "GET",
                        }
                    ],
                }
            ]
        }
        if status == "DECLINED":
            unit["payments"]["captures"][0]["status_details"] = {"reason": "DECLINED"}
        order["status"] = "COMPLETED"

    def capture_resource(self, order_id: str) -> dict[str, Any]:
        """The capture of an order as a PAYMENT.CAPTURE.* webhook carries it."""
        capture = dict(self.orders[order_id]["purchase_units"][0]["payments"]["captures"][0])
        capture["supplementary_data"] = {"related_ids": {"order_id": order_id}}
        return capture

    def _verify(self, body: dict[str, Any]) -> str:
        tid = str(body.get("transmission_id") or "")
        if (
            tid not in self.transmissions
            or body.get("auth_algo") != "SHA256withRSA"
            or body.get("cert_url") != CERT_URL
            or not isinstance(body.get("webhook_event"), dict)
        ):
            return "FAILURE"
        expected = self._signature(
            tid,
            str(body.get("transmission_time") or ""),
            str(body.get("webhook_id") or ""),
            body["webhook_event"],
        )
        given = str(body.get("transmission_sig") or "")
        return "SUCCESS" if hmac.compare_digest(expected, given) else "FAILURE"


def _error(status: int, name: str, issue: str) -> tuple[tuple[int, bytes], bool]:
    body = {
        "name": name,
        "message": "The requested action could not be performed.",
        "debug_id": "f0d9a1b2c3d4e",
        "details": [{"issue": issue, "description": issue.replace("_", " ").capitalize()}],
        "links": [],
    }
    return (status, json.dumps(body).encode()), False


def _handler(fake: FakePayPal) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self, method: str) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode() if length else ""
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, payload = fake.handle(method, parts.path, headers, raw)
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("Paypal-Debug-Id", f"fake{next(fake.counter)}")
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_DELETE(self) -> None:
            self._serve("DELETE")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def running_fake_paypal(**kwargs: Any) -> Iterator[FakePayPal]:
    fake = FakePayPal(**kwargs)
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


def payment_token_event(token: dict[str, Any], *, event_id: str) -> dict[str, Any]:
    """The VAULT.PAYMENT-TOKEN.CREATED event PayPal sends when a wallet is saved."""
    return {
        "id": event_id,
        "event_version": "1.0",
        "create_time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "resource_type": "payment_token",
        "resource_version": "3.0",
        "event_type": "VAULT.PAYMENT-TOKEN.CREATED",
        "summary": "A payment token has been created.",
        "resource": token,
        "links": [],
    }


def capture_event(capture: dict[str, Any], event_type: str, *, event_id: str) -> dict[str, Any]:
    """A PayPal webhook event (https://developer.paypal.com/api/rest/webhooks/) around a
    capture."""
    return {
        "id": event_id,
        "event_version": "1.0",
        "create_time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "resource_type": "capture",
        "resource_version": "2.0",
        "event_type": event_type,
        "summary": f"Payment {capture.get('status', '').lower()}",
        "resource": capture,
        "links": [],
    }
