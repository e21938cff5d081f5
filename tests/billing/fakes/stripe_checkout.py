"""Stripe Checkout for the local Stripe fake: the API (https://docs.stripe.com/api/checkout/
sessions: create, retrieve, expire), the saved cards it leaves (SetupIntents and
PaymentMethods: retrieve, and detach from the customer) and the page where the payer types
the card.

The page is served by the fake, on the fake's own origin, as Stripe's is on
checkout.stripe.com: the card number is posted to the fake and never to the back-office.
Paying creates a succeeded PaymentIntent carrying the session's ``payment_intent_data``
metadata, completes the session, redirects the browser to ``success_url`` at once and then,
as Stripe does, sends the signed ``checkout.session.completed`` and ``payment_intent.succeeded``
events to ``webhook_url`` a moment later (``webhook_delay``). The card 4000 0000 0000 0002 is
declined on the page, as in Stripe's test mode.
"""

from __future__ import annotations

import html
import json
import threading
import time
from typing import Any
from urllib.parse import parse_qsl

import requests

DECLINED_CARD = "4000000000000002"
Answer = tuple[int, bytes] | tuple[int, bytes, dict[str, str]]


class CheckoutMixin:
    """Mixed into FakeStripe, whose fields it uses: sessions, intents, lock, counter, url,
    webhook_url, webhook_secret, webhook_delay, idempotent, events_sent."""

    sessions: dict[str, dict[str, Any]]
    customers: dict[str, dict[str, Any]]
    setup_intents: dict[str, dict[str, Any]]
    payment_methods: dict[str, dict[str, Any]]
    events_sent: list[dict[str, Any]]
    webhook_url: str
    webhook_secret: str
    webhook_delay: float
    url: str

    # --- API -----------------------------------------------------------------------------
    def checkout_api(
        self, method: str, path: str, headers: dict[str, str], params: dict[str, Any]
    ) -> Answer:
        parts = path.removeprefix("/v1/checkout/sessions").strip("/").split("/")
        if method == "POST" and parts == [""]:
            key = headers.get("idempotency-key")
            with self.lock:  # type: ignore[attr-defined]
                if key and key in self.idempotent:  # type: ignore[attr-defined]
                    return self.idempotent[key]  # type: ignore[attr-defined,no-any-return]
            answer = (200, json.dumps(_public(self._session_create(params))).encode())
            if key:
                with self.lock:  # type: ignore[attr-defined]
                    self.idempotent[key] = answer  # type: ignore[attr-defined]
            return answer
        session = self.sessions.get(parts[0])
        if session is None:
            return 404, _missing(parts[0])
        if method == "GET" and len(parts) == 1:
            return 200, json.dumps(_public(session)).encode()
        if method == "POST" and parts[1:] == ["expire"]:
            if session["status"] != "open":
                return 400, json.dumps(
                    {
                        "error": {
                            "type": "invalid_request_error",
                            "message": 'Only Checkout Sessions with a status in ["open"] can '
                            "be expired.",
                        }
                    }
                ).encode()
            session["status"] = "expired"
            return 200, json.dumps(_public(session)).encode()
        return 404, _missing(path)

    def _session_create(self, params: dict[str, Any]) -> dict[str, Any]:
        n = next(self.counter)  # type: ignore[attr-defined]
        session_id = f"cs_test_fake{n:06d}"
        if params.get("mode") == "setup":
            return self._setup_session(session_id, params)
        item = params["line_items"]["0"]
        price = item["price_data"]
        session = {
            "id": session_id,
            "object": "checkout.session",
            "amount_subtotal": int(price["unit_amount"]) * int(item.get("quantity", 1)),
            "amount_total": int(price["unit_amount"]) * int(item.get("quantity", 1)),
            "cancel_url": params.get("cancel_url"),
            "client_reference_id": params.get("client_reference_id"),
            "created": int(time.time()),
            "currency": price["currency"],
            "customer": params.get("customer"),
            "customer_email": params.get("customer_email"),
            "expires_at": int(params.get("expires_at") or time.time() + 86400),
            "livemode": False,
            "metadata": dict(params.get("metadata") or {}),
            "mode": params.get("mode"),
            "payment_intent": None,
            "payment_status": "unpaid",
            "status": "open",
            "success_url": params.get("success_url"),
            "url": f"{self.url}/c/pay/{session_id}",
            "_product": price["product_data"]["name"],
            "_intent_data": dict(params.get("payment_intent_data") or {}),
        }
        with self.lock:  # type: ignore[attr-defined]
            self.sessions[session_id] = session
        return session

    def _setup_session(self, session_id: str, params: dict[str, Any]) -> dict[str, Any]:
        session = {
            "id": session_id,
            "object": "checkout.session",
            "amount_total": None,
            "cancel_url": params.get("cancel_url"),
            "created": int(time.time()),
            "currency": params.get("currency"),
            "customer": params.get("customer"),
            "expires_at": int(params.get("expires_at") or time.time() + 86400),
            "livemode": False,
            "metadata": dict(params.get("metadata") or {}),
            "mode": "setup",
            "payment_intent": None,
            "payment_status": "no_payment_required",
            "setup_intent": None,
            "status": "open",
            "success_url": params.get("success_url"),
            "url": f"{self.url}/c/pay/{session_id}",
            "_product": "Save a card",
            "_intent_data": dict(params.get("setup_intent_data") or {}),
        }
        with self.lock:  # type: ignore[attr-defined]
            self.sessions[session_id] = session
        return session

    def customer_api(self, params: dict[str, Any]) -> Answer:
        n = next(self.counter)  # type: ignore[attr-defined]
        customer = {
            "id": f"cus_fake{n:06d}",
            "object": "customer",
            "email": params.get("email"),
            "name": params.get("name"),
            "metadata": dict(params.get("metadata") or {}),
        }
        self.customers[customer["id"]] = customer
        return 200, json.dumps(customer).encode()

    def setup_api(self, method: str, path: str) -> Answer:
        kind, _, rest = path.removeprefix("/v1/").partition("/")
        object_id, _, action = rest.partition("/")
        store = self.setup_intents if kind == "setup_intents" else self.payment_methods
        found = store.get(object_id)
        if found is None:
            return 404, _missing(
                object_id, "PaymentMethod" if store is self.payment_methods else "setupintent"
            )
        if kind == "payment_methods" and method == "POST" and action == "detach":
            return self.detach_api(found)
        if method != "GET" or action:
            return 404, json.dumps(
                {
                    "error": {
                        "type": "invalid_request_error",
                        "message": f"Unrecognized request URL ({method}: {path}).",
                    }
                }
            ).encode()
        return 200, json.dumps(found).encode()

    def detach_api(self, found: dict[str, Any]) -> Answer:
        """POST /v1/payment_methods/{id}/detach (https://docs.stripe.com/api/payment_methods/
        detach): the PaymentMethod with ``customer`` null; a method no customer holds is
        refused with Stripe's 400 (an invalid_request_error without a code)."""
        with self.lock:  # type: ignore[attr-defined]
            if found["customer"] is None:
                return 400, json.dumps(
                    {
                        "error": {
                            "type": "invalid_request_error",
                            "message": "The payment method you provided is not attached to a "
                            "customer so detachment is impossible.",
                        }
                    }
                ).encode()
            found["customer"] = None
            return 200, json.dumps(found).encode()

    def detach_requests(self, payment_method_id: str = "") -> list[Any]:
        return [
            r
            for r in self.requests  # type: ignore[attr-defined]
            if r.method == "POST"
            and r.path.startswith("/v1/payment_methods/")
            and r.path.endswith("/detach")
            and (
                not payment_method_id or r.path == f"/v1/payment_methods/{payment_method_id}/detach"
            )
        ]

    def card_saved(self, customer: str, card: str = "4242424242424242") -> dict[str, Any]:
        """A card saved on ``customer`` at Stripe (as a completed SetupIntent leaves it)."""
        n = next(self.counter)  # type: ignore[attr-defined]
        method = payment_method_object(f"pm_fake{n:06d}", customer, card)
        with self.lock:  # type: ignore[attr-defined]
            self.payment_methods[method["id"]] = method
        return method

    def setup_complete(self, session_id: str, card: str = "4242424242424242") -> dict[str, Any]:
        """The payer saved a card on the page: a PaymentMethod on the customer, a succeeded
        SetupIntent, the session complete and its event (sent like a payment's)."""
        session = self.sessions[session_id]
        n = next(self.counter)  # type: ignore[attr-defined]
        method = payment_method_object(f"pm_fake{n:06d}", session["customer"], card)
        intent = {
            "id": f"seti_fake{n:06d}",
            "object": "setup_intent",
            "status": "succeeded",
            "customer": session["customer"],
            "payment_method": method["id"],
            "metadata": dict(session["_intent_data"].get("metadata") or {}),
        }
        self.payment_methods[method["id"]] = method
        self.setup_intents[intent["id"]] = intent
        session.update(status="complete", setup_intent=intent["id"])
        events = [_event(f"evt_cs_{session_id}", "checkout.session.completed", _public(session))]
        self.events_sent.extend(events)
        if self.webhook_url:
            threading.Thread(target=self._deliver, args=(events,), daemon=True).start()
        return method

    # --- the payer's page ----------------------------------------------------------------
    def checkout_page(self, method: str, path: str, body: str) -> Answer:
        session = self.sessions.get(path.removeprefix("/c/pay/").strip("/"))
        if session is None:
            return 404, b"No such checkout.", {"Content-Type": "text/plain"}
        if method == "POST":
            form = dict(parse_qsl(body))
            card = form.get("cardnumber", "").replace(" ", "")
            if card == DECLINED_CARD:
                return self._page(session, error="Your card was declined.")
            if session["mode"] == "setup":
                self.setup_complete(session["id"], card)
            else:
                self.session_pay(session["id"])
            return 303, b"", {"Location": str(session["success_url"])}
        if session["status"] != "open":
            return self._page(session, error=f"This checkout is {session['status']}.")
        return self._page(session)

    def _page(self, session: dict[str, Any], *, error: str = "") -> Answer:
        amount = (
            f"{session['amount_total'] / 100:.2f} {session['currency'].upper()}"
            if session["amount_total"] is not None
            else "Card saved for later payments"
        )
        text = f"""<!DOCTYPE html><html><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Stripe Checkout</title>
</head><body><h1>Pay {html.escape(session["_product"])}</h1><p id="amount">{amount}</p>
<p id="error">{html.escape(error)}</p>
<form method="post"><label>Card number <input name="cardnumber" autocomplete="cc-number"></label>
<label>Expiry <input name="exp"></label><label>CVC <input name="cvc"></label>
<button type="submit">Pay</button></form>
<a href="{html.escape(str(session["cancel_url"]))}">Back</a></body></html>"""
        return 200, text.encode(), {"Content-Type": "text/html; charset=utf-8"}

    def session_pay(self, session_id: str) -> dict[str, Any]:
        """The payer paid on the page: the intent succeeded, the session completed, and the
        events follow (sent to ``webhook_url`` if set, else only kept in ``events_sent``)."""
        session = self.sessions[session_id]
        data = session["_intent_data"]
        intent = self.create_intent(  # type: ignore[attr-defined]
            {
                "amount": session["amount_total"],
                "currency": session["currency"],
                "customer": session["customer"],
                "description": data.get("description"),
                "metadata": data.get("metadata") or {},
            }
        )
        session.update(status="complete", payment_status="paid", payment_intent=intent["id"])
        events = [
            _event(f"evt_cs_{session_id}", "checkout.session.completed", _public(session)),
            _event(f"evt_pi_{intent['id']}", "payment_intent.succeeded", dict(intent)),
        ]
        self.events_sent.extend(events)
        if self.webhook_url:
            threading.Thread(target=self._deliver, args=(events,), daemon=True).start()
        return intent

    def _deliver(self, events: list[dict[str, Any]]) -> None:
        from tests.billing.fakes.stripe_server import sign

        time.sleep(self.webhook_delay)
        for event in events:
            payload = json.dumps(event)
            requests.post(
                self.webhook_url,
                data=payload,
                headers={
                    "Content-Type": "application/json",
                    "Stripe-Signature": sign(payload, self.webhook_secret),
                },
                timeout=10,
            )


def payment_method_object(method_id: str, customer: str | None, card: str) -> dict[str, Any]:
    """A card PaymentMethod as Stripe returns it (https://docs.stripe.com/api/payment_methods/
    object); the card number itself never leaves Stripe, only its brand, last 4 and expiry."""
    return {
        "id": method_id,
        "object": "payment_method",
        "allow_redisplay": "unspecified",
        "billing_details": {
            "address": {
                "city": None,
                "country": None,
                "line1": None,
                "line2": None,
                "postal_code": None,
                "state": None,
            },
            "email": None,
            "name": None,
            "phone": None,
        },
        "card": {
            "brand": "visa",
            "checks": {
                "address_line1_check": None,
                "address_postal_code_check": None,
                "cvc_check": "pass",
            },
            "country": "US",
            "display_brand": "visa",
            "exp_month": 12,
            "exp_year": 2031,
            "fingerprint": f"fp{card[-4:]}fake",
            "funding": "credit",
            "generated_from": None,
            "last4": card[-4:],
            "networks": {"available": ["visa"], "preferred": None},
            "three_d_secure_usage": {"supported": True},
            "wallet": None,
        },
        "created": int(time.time()),
        "customer": customer,
        "livemode": False,
        "metadata": {},
        "type": "card",
    }


def _public(session: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in session.items() if not k.startswith("_")}


def _event(event_id: str, type_: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": event_id,
        "object": "event",
        "api_version": "2025-09-30.clover",
        "created": int(time.time()),
        "data": {"object": obj},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": type_,
    }


def _missing(what: str, kind: str = "checkout.session") -> bytes:
    return json.dumps(
        {
            "error": {
                "type": "invalid_request_error",
                "code": "resource_missing",
                "message": f"No such {kind}: '{what}'",
            }
        }
    ).encode()
