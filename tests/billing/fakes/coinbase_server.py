"""A local fake of Coinbase Commerce's POST /charges, at the HTTP layer, and its webhooks.

Runs ``http.server`` in a thread on 127.0.0.1 and answers with the documented shape of
https://docs.cdp.coinbase.com/commerce-onchain/reference/ (``{"data": charge}``). Behaviours
for the next charges are queued with ``fake.queue(...)``: "succeed" (default), "timeout"
(created, answered after the client gave up), "server_error" (500), "bad_request" (400).
Webhook bodies are signed as Coinbase does: hex HMAC-SHA256 of the raw body (``sign``).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

API_KEY = "fake-coinbase-api-key"


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class FakeCoinbase:
    timeout_sleep: float = 1.0
    charges: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    behaviours: deque[str] = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock)
    counter: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    url: str = ""

    def queue(self, kind: str) -> None:
        self.behaviours.append(kind)

    def creations(self) -> list[Recorded]:
        return [r for r in self.requests if r.method == "POST" and r.path == "/charges"]

    def handle(self, method: str, path: str, headers: dict[str, str], raw: str):
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        with self.lock:
            self.requests.append(Recorded(method, path, headers, body))
        if headers.get("x-cc-api-key") != API_KEY:
            return 401, _error("authorization_error", "No such API key.")
        if not headers.get("x-cc-version"):
            return 400, _error("invalid_request", "X-CC-Version header is required.")
        if method != "POST" or path != "/charges":
            return 404, _error("not_found", "Not found")
        behaviour = self.behaviours.popleft() if self.behaviours else "succeed"
        if behaviour == "server_error":
            return 500, _error("internal_server_error", "Internal server error")
        if behaviour == "bad_request" or not isinstance(body, dict):
            return 400, _error("invalid_request", "local_price is invalid")
        if body.get("pricing_type") != "fixed_price" or not body.get("local_price"):
            return 400, _error("invalid_request", "pricing_type must be fixed_price")
        charge = self._create(body)
        if behaviour == "timeout":
            time.sleep(self.timeout_sleep)
        return 201, json.dumps({"data": charge}).encode()

    def _create(self, body: dict[str, Any]) -> dict[str, Any]:
        n = next(self.counter)
        code = f"FAKE{n:04d}"
        created = datetime.now(UTC)
        local = body["local_price"]
        charge = {
            "id": str(uuid.UUID(int=n)),
            "resource": "charge",
            "code": code,
            "name": body.get("name"),
            "description": body.get("description"),
            "hosted_url": f"https://commerce.coinbase.com/charges/{code}",
            "created_at": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "expires_at": (created + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "timeline": [{"time": _now(), "status": "NEW"}],
            "metadata": body.get("metadata") or {},
            "pricing_type": "fixed_price",
            "pricing": {
                "local": {"amount": local["amount"], "currency": local["currency"]},
            },
            "payments": [],
            "addresses": {"ethereum": "0x419f91df39951fd4e8acc8f1874b01c0c78ceba6"},
        }
        with self.lock:
            self.charges[code] = charge
        return charge


def _error(kind: str, message: str) -> bytes:
    return json.dumps({"error": {"type": kind, "message": message}}).encode()


def _handler(fake: FakeCoinbase) -> type[BaseHTTPRequestHandler]:
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
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def running_fake_coinbase(**kwargs: Any) -> Iterator[FakeCoinbase]:
    fake = FakeCoinbase(**kwargs)
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


TIMELINE = {
    "charge:pending": [{"status": "PENDING"}],
    "charge:confirmed": [{"status": "PENDING"}, {"status": "COMPLETED"}],
    "charge:failed": [{"status": "EXPIRED"}],
    "charge:delayed": [{"status": "EXPIRED"}, {"status": "UNRESOLVED", "context": "DELAYED"}],
    "charge:resolved": [{"status": "RESOLVED"}],
}


def charge_event(charge: dict[str, Any], type_: str, *, event_id: str) -> dict[str, Any]:
    """A Coinbase Commerce webhook body around the charge as it is after ``type_``."""
    data = dict(charge)
    data["timeline"] = [
        *charge.get("timeline", []),
        *({**step, "time": _now()} for step in TIMELINE.get(type_, [])),
    ]
    return {
        "id": next(_deliveries),
        "scheduled_for": _now(),
        "attempt_number": 1,
        "event": {
            "id": event_id,
            "resource": "event",
            "type": type_,
            "api_version": "2018-03-22",
            "created_at": _now(),
            "data": data,
        },
    }


_deliveries = itertools.count(1)


def sign(payload: bytes | str, secret: str) -> str:
    """X-CC-Webhook-Signature as Coinbase computes it: hex HMAC-SHA256 of the raw body."""
    raw = payload.encode() if isinstance(payload, str) else payload
    return hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
