"""Stripe through its official SDK (``StripeClient``): PaymentIntents, Refunds, Checkout,
saved PaymentMethods (read, detached) and webhook signatures.

Settings (read with getattr so the app starts without them): STRIPE_SECRET_KEY,
STRIPE_API_BASE (a local fake in tests), STRIPE_TIMEOUT_SECONDS, STRIPE_MAX_NETWORK_RETRIES,
STRIPE_WEBHOOK_SECRET (comma-separated during a secret rotation) and
STRIPE_WEBHOOK_TOLERANCE_SECONDS.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

import stripe
from django.conf import settings

from billing.processors import (
    IntentResult,
    ProcessorDeclined,
    ProcessorNotConfigured,
    ProcessorRequestError,
    ProcessorUnreachable,
    WebhookRefused,
)

NAME = "stripe"
# Written into every PaymentIntent's metadata: how an intent is found again without its id.
ATTEMPT_METADATA_KEY = "backoffice_attempt"
# Written into every refund we ask for: its Idempotency-Key, by which a lost answer is found.
REFUND_METADATA_KEY = "backoffice_refund"
DEFAULT_TIMEOUT_SECONDS = 30.0
DEFAULT_TOLERANCE_SECONDS = 300


@lru_cache(maxsize=8)
def _client(api_key: str, api_base: str | None, timeout: float, retries: int) -> Any:
    return stripe.StripeClient(
        api_key,
        base_addresses={"api": api_base} if api_base else None,
        http_client=stripe.RequestsClient(timeout=timeout),
        max_network_retries=retries,
    )


def stripe_client() -> Any:
    api_key = getattr(settings, "STRIPE_SECRET_KEY", "")
    if not api_key:
        raise ProcessorNotConfigured("Stripe is not configured (STRIPE_SECRET_KEY is not set).")
    return _client(
        api_key,
        getattr(settings, "STRIPE_API_BASE", None) or None,
        float(getattr(settings, "STRIPE_TIMEOUT_SECONDS", DEFAULT_TIMEOUT_SECONDS)),
        int(getattr(settings, "STRIPE_MAX_NETWORK_RETRIES", 0)),
    )


def _as_dict(obj: Any) -> dict[str, Any]:
    if isinstance(obj, stripe.StripeObject):
        return obj.to_dict()
    return dict(obj or {})


def intent_from(obj: Mapping[str, Any] | Any) -> IntentResult:
    """An IntentResult from a PaymentIntent (SDK object, API or webhook JSON)."""
    data = _as_dict(obj)
    charge = data.get("latest_charge") or ""
    if isinstance(charge, Mapping):
        charge = charge.get("id") or ""
    error = data.get("last_payment_error") or {}
    return IntentResult(
        id=str(data.get("id") or ""),
        status=str(data.get("status") or ""),
        amount_minor=int(data.get("amount") or 0),
        currency=str(data.get("currency") or "").upper(),
        latest_charge=str(charge),
        customer=str(data.get("customer") or ""),
        failure_code=str(error.get("decline_code") or error.get("code") or ""),
        failure_message=str(error.get("message") or ""),
        metadata={str(k): str(v) for k, v in (data.get("metadata") or {}).items()},
    )


def _refusal(exc: stripe.StripeError) -> ProcessorDeclined:
    error = (exc.json_body or {}).get("error") or {} if isinstance(exc.json_body, dict) else {}
    intent = error.get("payment_intent") or {}
    kind = ProcessorDeclined if isinstance(exc, stripe.CardError) else ProcessorRequestError
    return kind(
        code=str(error.get("decline_code") or error.get("code") or exc.code or type(exc).__name__),
        message=str(error.get("message") or exc.user_message or "The payment was refused."),
        intent_id=str(intent.get("id") or "") if isinstance(intent, Mapping) else str(intent),
        charge_id=str(error.get("charge") or ""),
    )


def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call the SDK and sort its errors into a definite no and no answer at all."""
    try:
        return fn(*args, **kwargs)
    except (stripe.APIConnectionError, stripe.IdempotencyError) as exc:
        raise ProcessorUnreachable(str(exc)) from exc
    except stripe.StripeError as exc:
        status = exc.http_status or 0
        if status >= 500 or status in (0, 409):
            # Stripe: a 500 may or may not have been processed; 409 is a concurrent request.
            raise ProcessorUnreachable(str(exc)) from exc
        raise _refusal(exc) from exc


def payment_intent_charge(
    *,
    amount_minor: int,
    currency: str,
    customer: str,
    payment_method: str,
    idempotency_key: str,
    metadata: Mapping[str, str],
    description: str = "",
) -> IntentResult:
    """Create and confirm an off-session PaymentIntent with a saved payment method.

    The same ``idempotency_key`` never charges twice (Stripe replays the first answer).
    """
    params: dict[str, Any] = {
        "amount": amount_minor,
        "currency": currency.lower(),
        "customer": customer,
        "payment_method": payment_method,
        "off_session": True,
        "confirm": True,
        "metadata": dict(metadata),
    }
    if description:
        params["description"] = description[:1000]
    intent = _call(
        stripe_client().v1.payment_intents.create,
        params=params,
        options={"idempotency_key": idempotency_key},
    )
    return intent_from(intent)


def payment_intent_get(intent_id: str) -> IntentResult:
    return intent_from(_call(stripe_client().v1.payment_intents.retrieve, intent_id))


def _intents_since(customer: str, created_gte: int) -> Iterator[Any]:
    page = _call(
        stripe_client().v1.payment_intents.list,
        params={"customer": customer, "created": {"gte": created_gte}, "limit": 100},
    )
    while True:
        yield from page.data
        if not page.has_more or not page.data:
            return
        page = _call(
            stripe_client().v1.payment_intents.list,
            params={
                "customer": customer,
                "created": {"gte": created_gte},
                "limit": 100,
                "starting_after": page.data[-1].id,
            },
        )


def payment_intent_find(*, customer: str, attempt_key: str, since: datetime) -> IntentResult | None:
    """The intent created for our attempt, found by its metadata among the customer's intents
    created since ``since`` (a list, which unlike search is strongly consistent)."""
    created_gte = int(since.timestamp()) - 600
    for intent in _intents_since(customer, created_gte):
        result = intent_from(intent)
        if result.metadata.get(ATTEMPT_METADATA_KEY) == attempt_key:
            return result
    return None


@dataclass(frozen=True, slots=True)
class CheckoutSession:
    """A Checkout Session (https://docs.stripe.com/api/checkout/sessions/object): the page on
    Stripe where the payer enters the card; our server never sees the card number."""

    id: str
    url: str
    status: str  # open, complete, expired
    payment_status: str  # unpaid, paid, no_payment_required
    payment_intent: str
    metadata: dict[str, str] = field(default_factory=dict)
    mode: str = "payment"  # payment, or setup (a card saved for later)
    setup_intent: str = ""
    customer: str = ""


def checkout_session_from(obj: Mapping[str, Any] | Any) -> CheckoutSession:
    data = _as_dict(obj)
    intent = data.get("payment_intent") or ""
    if isinstance(intent, Mapping):
        intent = intent.get("id") or ""
    setup = data.get("setup_intent") or ""
    if isinstance(setup, Mapping):
        setup = setup.get("id") or ""
    customer = data.get("customer") or ""
    if isinstance(customer, Mapping):
        customer = customer.get("id") or ""
    return CheckoutSession(
        id=str(data.get("id") or ""),
        url=str(data.get("url") or ""),
        status=str(data.get("status") or ""),
        payment_status=str(data.get("payment_status") or ""),
        payment_intent=str(intent),
        metadata={str(k): str(v) for k, v in (data.get("metadata") or {}).items()},
        mode=str(data.get("mode") or "payment"),
        setup_intent=str(setup),
        customer=str(customer),
    )


def checkout_session_create(
    *,
    amount_minor: int,
    currency: str,
    name: str,
    success_url: str,
    cancel_url: str,
    idempotency_key: str,
    metadata: Mapping[str, str],
    expires_at: datetime,
    customer: str = "",
    customer_email: str = "",
) -> CheckoutSession:
    """A one-off payment (mode ``payment``) of ``amount_minor`` on Stripe's hosted Checkout.
    The metadata goes on the session and on the PaymentIntent it creates, so either event
    finds our attempt; the same ``idempotency_key`` creates one session."""
    params: dict[str, Any] = {
        "mode": "payment",
        "line_items": [
            {
                "quantity": 1,
                "price_data": {
                    "currency": currency.lower(),
                    "unit_amount": amount_minor,
                    "product_data": {"name": name[:250]},
                },
            }
        ],
        "success_url": success_url,
        "cancel_url": cancel_url,
        "client_reference_id": metadata.get(ATTEMPT_METADATA_KEY, "")[:200],
        "expires_at": int(expires_at.timestamp()),
        "metadata": dict(metadata),
        "payment_intent_data": {"metadata": dict(metadata), "description": name[:1000]},
    }
    if customer:
        params["customer"] = customer
    elif customer_email:
        params["customer_email"] = customer_email
    session = _call(
        stripe_client().v1.checkout.sessions.create,
        params=params,
        options={"idempotency_key": idempotency_key},
    )
    result = checkout_session_from(session)
    if not result.id or not result.url:
        raise ProcessorRequestError(code="bad_response", message="Stripe gave no Checkout page.")
    return result


def customer_create(*, email: str, name: str, idempotency_key: str, reference: str) -> str:
    """A Stripe customer for one of ours (cards are saved to a customer); returns its id."""
    customer = _call(
        stripe_client().v1.customers.create,
        params={"email": email, "name": name[:256], "metadata": {"backoffice_customer": reference}},
        options={"idempotency_key": idempotency_key},
    )
    return str(_as_dict(customer).get("id") or "")


def checkout_setup_session_create(
    *,
    customer: str,
    currency: str,
    success_url: str,
    cancel_url: str,
    idempotency_key: str,
    metadata: Mapping[str, str],
    expires_at: datetime,
) -> CheckoutSession:
    """Stripe's page where the payer saves a card for later (mode ``setup``): the card is
    entered there, and a SetupIntent leaves a PaymentMethod on the customer."""
    session = _call(
        stripe_client().v1.checkout.sessions.create,
        params={
            "mode": "setup",
            "currency": currency.lower(),
            "customer": customer,
            "payment_method_types": ["card"],
            "success_url": success_url,
            "cancel_url": cancel_url,
            "expires_at": int(expires_at.timestamp()),
            "metadata": dict(metadata),
            "setup_intent_data": {"metadata": dict(metadata)},
        },
        options={"idempotency_key": idempotency_key},
    )
    result = checkout_session_from(session)
    if not result.id or not result.url:
        raise ProcessorRequestError(code="bad_response", message="Stripe gave no Checkout page.")
    return result


@dataclass(frozen=True, slots=True)
class SavedCard:
    id: str
    customer: str
    brand: str
    last4: str
    exp_month: int | None
    exp_year: int | None


def setup_intent_card(setup_intent_id: str) -> SavedCard | None:
    """The card a succeeded SetupIntent saved (its PaymentMethod read from Stripe), or None
    while it has not succeeded."""
    intent = _as_dict(_call(stripe_client().v1.setup_intents.retrieve, setup_intent_id))
    if intent.get("status") != "succeeded" or not intent.get("payment_method"):
        return None
    method_ref = intent["payment_method"]
    method_id = method_ref.get("id") if isinstance(method_ref, Mapping) else str(method_ref)
    method = _as_dict(_call(stripe_client().v1.payment_methods.retrieve, method_id))
    card = method.get("card") or {}
    return SavedCard(
        id=str(method.get("id") or ""),
        customer=str(method.get("customer") or intent.get("customer") or ""),
        brand=str(card.get("brand") or ""),
        last4=str(card.get("last4") or ""),
        exp_month=int(card["exp_month"]) if card.get("exp_month") else None,
        exp_year=int(card["exp_year"]) if card.get("exp_year") else None,
    )


# Stripe's answer to detaching a PaymentMethod no customer holds (a 400 without a code).
_NOT_ATTACHED = "not attached to a customer"


def payment_method_detach(payment_method_id: str) -> bool:
    """Take a saved PaymentMethod (``pm_``) off its Stripe customer for good: it can no
    longer be charged or attached again. True when Stripe detached it now; False when there
    was nothing to detach (not attached any more, or unknown to Stripe), which is as done.
    No answer raises ``ProcessorUnreachable``; another refusal ``ProcessorRequestError``."""
    try:
        _call(stripe_client().v1.payment_methods.detach, payment_method_id)
    except ProcessorRequestError as exc:
        if exc.code == "resource_missing" or _NOT_ATTACHED in exc.message:
            return False
        raise
    return True


def checkout_session_get(session_id: str) -> CheckoutSession | None:
    """The session as Stripe has it now, or None if Stripe has no such session."""
    try:
        return checkout_session_from(
            _call(stripe_client().v1.checkout.sessions.retrieve, session_id)
        )
    except ProcessorRequestError as exc:
        if exc.code == "resource_missing":
            return None
        raise


def checkout_session_expire(session_id: str) -> CheckoutSession:
    """Close an open session so it can no longer be paid. Stripe refuses once it is complete
    (``ProcessorRequestError``): then its payment is on its way."""
    return checkout_session_from(_call(stripe_client().v1.checkout.sessions.expire, session_id))


@dataclass(frozen=True, slots=True)
class RefundResult:
    """What Stripe says about one refund (https://docs.stripe.com/api/refunds/object)."""

    id: str
    status: str
    amount_minor: int
    currency: str
    charge: str = ""
    payment_intent: str = ""
    reason: str = ""
    failure_reason: str = ""
    created: int = 0
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"

    @property
    def failed(self) -> bool:
        return self.status in ("failed", "canceled")


def _id_of(value: Any) -> str:
    if isinstance(value, Mapping):
        return str(value.get("id") or "")
    return str(value or "")


def refund_from(obj: Mapping[str, Any] | Any) -> RefundResult:
    """A RefundResult from a Refund (SDK object, API or webhook JSON)."""
    data = _as_dict(obj)
    return RefundResult(
        id=str(data.get("id") or ""),
        status=str(data.get("status") or ""),
        amount_minor=int(data.get("amount") or 0),
        currency=str(data.get("currency") or "").upper(),
        charge=_id_of(data.get("charge")),
        payment_intent=_id_of(data.get("payment_intent")),
        reason=str(data.get("reason") or ""),
        failure_reason=str(data.get("failure_reason") or ""),
        created=int(data.get("created") or 0),
        metadata={str(k): str(v) for k, v in (data.get("metadata") or {}).items()},
    )


def refund_create(
    *, charge_id: str, amount_minor: int, idempotency_key: str, metadata: Mapping[str, str]
) -> RefundResult:
    """Refund part or all of a charge (``ch_``) or PaymentIntent (``pi_``). The same
    ``idempotency_key`` never refunds twice (Stripe replays the first answer for 24 hours)."""
    target = "payment_intent" if charge_id.startswith("pi_") else "charge"
    refund = _call(
        stripe_client().v1.refunds.create,
        params={target: charge_id, "amount": amount_minor, "metadata": dict(metadata)},
        options={"idempotency_key": idempotency_key},
    )
    return refund_from(refund)


def refund_get(refund_id: str) -> RefundResult:
    return refund_from(_call(stripe_client().v1.refunds.retrieve, refund_id))


def refunds_list(*, charge_id: str = "", created_gte: int | None = None) -> Iterator[RefundResult]:
    """The refunds of one charge or PaymentIntent, or of the account since ``created_gte``,
    newest first, every page (a list, strongly consistent unlike search)."""
    params: dict[str, Any] = {"limit": 100}
    if charge_id:
        params["payment_intent" if charge_id.startswith("pi_") else "charge"] = charge_id
    if created_gte is not None:
        params["created"] = {"gte": created_gte}
    page = _call(stripe_client().v1.refunds.list, params=params)
    while True:
        for refund in page.data:
            yield refund_from(refund)
        if not page.has_more or not page.data:
            return
        page = _call(
            stripe_client().v1.refunds.list,
            params={**params, "starting_after": page.data[-1].id},
        )


def charge_refunds(charge: Mapping[str, Any]) -> list[RefundResult] | None:
    """The refunds embedded in a Charge (``refunds.data``, API versions before 2022-11-15), or
    None when the charge does not carry them all and they must be listed."""
    refunds = charge.get("refunds")
    if not isinstance(refunds, Mapping) or refunds.get("has_more"):
        return None
    data = refunds.get("data")
    if not isinstance(data, list):
        return None
    return [refund_from(r) for r in data if isinstance(r, Mapping)]


def webhook_secrets() -> list[str]:
    raw = getattr(settings, "STRIPE_WEBHOOK_SECRET", "") or ""
    return [s.strip() for s in str(raw).split(",") if s.strip()]


def webhook_event_verify(*, payload: bytes, signature: str | None) -> dict[str, Any]:
    """The event of a webhook request whose Stripe-Signature is valid and recent.

    The SDK checks the HMAC and refuses timestamps older than the tolerance; it accepts any
    timestamp in the future, so that side is checked here (RELIABILITY.md B8).
    """
    secrets = webhook_secrets()
    if not secrets:
        raise ProcessorNotConfigured("Stripe webhooks are not configured (STRIPE_WEBHOOK_SECRET).")
    tolerance = int(
        getattr(settings, "STRIPE_WEBHOOK_TOLERANCE_SECONDS", DEFAULT_TOLERANCE_SECONDS)
    )
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise WebhookRefused("The webhook body is not UTF-8.") from None
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(text, signature, secret, tolerance)
        except stripe.SignatureVerificationError as exc:
            reason = str(exc.user_message or exc)
            continue
        break
    else:
        raise WebhookRefused(f"Invalid Stripe-Signature: {reason}")
    timestamp = _signature_timestamp(signature or "")  # after the SDK: the header parses
    if timestamp > time.time() + tolerance:
        raise WebhookRefused("Invalid Stripe-Signature: the timestamp is in the future.")
    try:
        event = json.loads(text)
    except (ValueError, RecursionError):
        raise WebhookRefused("The webhook body is not JSON.") from None
    if not isinstance(event, dict) or not event.get("id") or not event.get("type"):
        raise WebhookRefused("The webhook body is not a Stripe event.")
    return event


def _signature_timestamp(header: str) -> int:
    """The header's timestamp, read as the SDK reads it (the first item keyed exactly "t").
    A header with more than one timestamp, however spaced, is refused: which one was signed
    and which one is checked must not differ."""
    keys = [item.split("=", 2)[0] for item in header.split(",")]
    if sum(1 for key in keys if key.strip() == "t") != 1:
        raise WebhookRefused("Invalid Stripe-Signature: one timestamp (t=) is expected.")
    for item in header.split(","):
        parts = item.split("=", 2)
        if parts[0] == "t" and len(parts) > 1:
            return int(parts[1])
    raise WebhookRefused("Invalid Stripe-Signature: the timestamp is malformed.")
