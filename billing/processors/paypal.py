"""PayPal through its REST API (Orders v2, Payment Method Tokens v3), with ``requests``: no
SDK.

An order is created for what is due on an invoice (intent CAPTURE), the payer approves it at
PayPal, and it is captured; the capture id is what a payment is recorded under. A payer may
also save the wallet (setup token approved at PayPal, exchanged for a payment token), which
autopay then charges without the payer (an order on the token, completed at once). Every write
carries a PayPal-Request-Id, so a repeated request returns the first answer instead of acting
twice. Webhooks are verified by PayPal itself (POST /v1/notifications/verify-webhook-signature).

Settings (read with getattr so the app starts without them): PAYPAL_CLIENT_ID,
PAYPAL_CLIENT_SECRET, PAYPAL_API_BASE (sandbox by default; a local fake in tests),
PAYPAL_WEBHOOK_ID, PAYPAL_TIMEOUT_SECONDS, PAYPAL_RETURN_URL and PAYPAL_CANCEL_URL.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import requests
from django.conf import settings

from billing.processors import (
    IntentResult,
    ProcessorDeclined,
    ProcessorNotConfigured,
    ProcessorRequestError,
    ProcessorUnreachable,
    WebhookRefused,
)
from core.exceptions import DomainError
from core.money import check_amount, round_money, to_minor_units

NAME = "paypal"
ATTEMPT_METADATA_KEY = "backoffice_attempt"
DEFAULT_API_BASE = "https://api-m.sandbox.paypal.com"
DEFAULT_TIMEOUT_SECONDS = 30.0
# Refresh a token this long before PayPal says it expires.
TOKEN_MARGIN_SECONDS = 60

# https://developer.paypal.com/api/rest/reference/currency-codes/ : the currencies PayPal
# accepts for payments from any country. BRL, CNY, INR and MYR are left out: PayPal takes them
# from in-country accounts only.
SUPPORTED_CURRENCIES = frozenset(
    {
        "AUD", "CAD", "CHF", "CZK", "DKK", "EUR", "GBP", "HKD", "HUF", "ILS", "JPY",
        "MXN", "NOK", "NZD", "PHP", "PLN", "SEK", "SGD", "THB", "TWD", "USD",
    }
)  # fmt: skip
# PayPal refuses decimals in these, although ISO 4217 gives HUF and TWD two.
NO_DECIMALS = frozenset({"HUF", "JPY", "TWD"})
# Refusals of the payer's side (a decline), as opposed to a bad request of ours.
PAYER_REFUSALS = frozenset(
    {
        "AGREEMENT_ALREADY_CANCELLED",
        "BILLING_AGREEMENT_NOT_FOUND",
        "INSTRUMENT_DECLINED",
        "PAYER_ACCOUNT_LOCKED_OR_CLOSED",
        "PAYER_ACCOUNT_RESTRICTED",
        "PAYER_ACTION_REQUIRED",
        "PAYER_CANNOT_PAY",
        "TRANSACTION_REFUSED",
    }
)
TRANSMISSION_HEADERS = {
    "auth_algo": "PAYPAL-AUTH-ALGO",
    "cert_url": "PAYPAL-CERT-URL",
    "transmission_id": "PAYPAL-TRANSMISSION-ID",
    "transmission_sig": "PAYPAL-TRANSMISSION-SIG",
    "transmission_time": "PAYPAL-TRANSMISSION-TIME",
}


class CurrencyNotSupported(DomainError):
    code = "currency_not_supported"


class WebhookVerificationUnavailable(DomainError):
    """PayPal could not be asked whether the webhook is genuine: PayPal delivers it again."""

    code = "webhook_verification_unavailable"
    status_code = 503


@dataclass(frozen=True, slots=True)
class PayPalOrder:
    id: str
    status: str
    currency: str
    value: str
    custom_id: str = ""
    approve_url: str = ""
    capture_id: str = ""
    capture_status: str = ""
    capture_currency: str = ""
    capture_value: str = ""
    failure_reason: str = ""

    def intent(self) -> IntentResult:
        """The order in the adapters' common shape: captured is ``succeeded``, a declined
        capture or a voided order is ``canceled``, anything else is still ``processing``."""
        if self.capture_status == "COMPLETED":
            status = "succeeded"
        elif self.capture_status in ("DECLINED", "FAILED") or self.status == "VOIDED":
            status = "canceled"
        else:
            status = "processing"
        currency = self.capture_currency or self.currency
        return IntentResult(
            id=self.id,
            status=status,
            amount_minor=_minor(self.capture_value or self.value, currency),
            currency=currency,
            latest_charge=self.capture_id,
            failure_code=f"capture_{self.capture_status.lower()}" if status == "canceled" else "",
            failure_message=self.failure_reason,
            metadata={ATTEMPT_METADATA_KEY: self.custom_id} if self.custom_id else {},
        )


def _minor(value: str, currency: str) -> int:
    if not value or not currency:
        return 0
    try:
        return to_minor_units(Decimal(value), currency)
    except (InvalidOperation, DomainError):
        return 0


def amount_value(amount: Decimal, currency: str) -> str:
    """The amount as PayPal's decimal string (USD 35.20 -> "35.20", JPY 1999 -> "1999").
    Refuses, before anything is sent, a currency PayPal does not take."""
    if currency not in SUPPORTED_CURRENCIES:
        raise CurrencyNotSupported(
            f"PayPal does not accept {currency}; it takes "
            f"{', '.join(sorted(SUPPORTED_CURRENCIES))}.",
            field="currency",
            currency=currency,
        )
    amount = round_money(check_amount(amount, currency), currency)
    if currency in NO_DECIMALS:
        if amount != amount.to_integral_value():
            raise CurrencyNotSupported(
                f"PayPal takes whole {currency} amounts only; {amount} has decimals.",
                field="amount",
                currency=currency,
            )
        amount = amount.quantize(Decimal(1))
    return f"{amount:f}"


# --- HTTP -------------------------------------------------------------------------------------


def _config() -> tuple[str, str, str, float]:
    client_id = getattr(settings, "PAYPAL_CLIENT_ID", "") or ""
    secret = getattr(settings, "PAYPAL_CLIENT_SECRET", "") or ""
    if not client_id or not secret:
        raise ProcessorNotConfigured(
            "PayPal is not configured (PAYPAL_CLIENT_ID and PAYPAL_CLIENT_SECRET are not set)."
        )
    base = (getattr(settings, "PAYPAL_API_BASE", "") or DEFAULT_API_BASE).rstrip("/")
    timeout = float(getattr(settings, "PAYPAL_TIMEOUT_SECONDS", DEFAULT_TIMEOUT_SECONDS))
    return base, client_id, secret, timeout


def paypal_configured() -> None:
    """Refuses at once, before any attempt is written, when PayPal is not configured."""
    _config()


_tokens: dict[tuple[str, str], tuple[str, float]] = {}
_tokens_lock = threading.Lock()


def _token(*, refresh: bool = False) -> str:
    """An OAuth2 access token (client credentials), cached until shortly before it expires."""
    base, client_id, secret, timeout = _config()
    key = (base, client_id)
    with _tokens_lock:
        cached = _tokens.get(key)
        if cached and not refresh and cached[1] > time.monotonic():
            return cached[0]
    try:
        response = requests.post(
            f"{base}/v1/oauth2/token",
            data={"grant_type": "client_credentials"},
            auth=(client_id, secret),
            headers={"Accept": "application/json"},
            timeout=timeout,
        )
    except requests.RequestException as exc:
        raise ProcessorUnreachable(f"PayPal token: {exc}") from exc
    if response.status_code >= 500:
        raise ProcessorUnreachable(f"PayPal token: HTTP {response.status_code}")
    body = _json(response)
    if response.status_code != 200 or not body.get("access_token"):
        raise ProcessorRequestError(
            code=str(body.get("error") or "authentication_failed"),
            message=str(body.get("error_description") or "PayPal refused the credentials."),
        )
    expires_in = int(body.get("expires_in") or 0)
    with _tokens_lock:
        _tokens[key] = (
            str(body["access_token"]),
            time.monotonic() + max(expires_in - TOKEN_MARGIN_SECONDS, 0),
        )
    return str(body["access_token"])


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _request(
    method: str, path: str, *, body: Any = None, request_id: str = ""
) -> tuple[int, dict[str, Any]]:
    """Call the API with a bearer token (fetched again once if PayPal says it expired).
    No answer or a 5xx raises ProcessorUnreachable: the outcome is unknown."""
    base, _, _, timeout = _config()
    for attempt in (1, 2):
        headers = {
            "Authorization": f"Bearer {_token(refresh=attempt == 2)}",
            "Accept": "application/json",
            "Content-Type": "application/json",
            "Prefer": "return=representation",
        }
        if request_id:
            headers["PayPal-Request-Id"] = request_id
        try:
            response = requests.request(
                method,
                f"{base}{path}",
                data=json.dumps(body) if body is not None else None,
                headers=headers,
                timeout=timeout,
            )
        except requests.RequestException as exc:
            raise ProcessorUnreachable(f"PayPal {method} {path}: {exc}") from exc
        if response.status_code == 401 and attempt == 1:
            continue
        break
    if response.status_code >= 500 or response.status_code == 409:
        # 409: a request with the same PayPal-Request-Id is still being processed.
        raise ProcessorUnreachable(f"PayPal {method} {path}: HTTP {response.status_code}")
    return response.status_code, _json(response)


def _refusal(status: int, body: Mapping[str, Any]) -> ProcessorDeclined:
    details = body.get("details") or [{}]
    first = details[0] if isinstance(details, list) and details else {}
    issue = str(first.get("issue") or body.get("name") or f"http_{status}")
    message = str(first.get("description") or body.get("message") or "PayPal refused it.")
    if issue in PAYER_REFUSALS:
        return ProcessorDeclined(code=issue.lower(), message=message)
    return ProcessorRequestError(code=issue.lower(), message=message)


def order_from(data: Mapping[str, Any]) -> PayPalOrder:
    """A PayPalOrder from an order as the API returns it."""
    unit = (data.get("purchase_units") or [{}])[0]
    amount = unit.get("amount") or {}
    captures = (unit.get("payments") or {}).get("captures") or []
    capture = captures[-1] if captures else {}
    capture_amount = capture.get("amount") or {}
    approve = ""
    for link in data.get("links") or []:
        if link.get("rel") in ("approve", "payer-action"):
            approve = str(link.get("href") or "")
    return PayPalOrder(
        id=str(data.get("id") or ""),
        status=str(data.get("status") or ""),
        currency=str(amount.get("currency_code") or ""),
        value=str(amount.get("value") or ""),
        custom_id=str(unit.get("custom_id") or capture.get("custom_id") or ""),
        approve_url=approve,
        capture_id=str(capture.get("id") or ""),
        capture_status=str(capture.get("status") or ""),
        capture_currency=str(capture_amount.get("currency_code") or ""),
        capture_value=str(capture_amount.get("value") or ""),
        failure_reason=str((capture.get("status_details") or {}).get("reason") or ""),
    )


def capture_intent(capture: Mapping[str, Any]) -> IntentResult:
    """A capture (a webhook's resource) in the adapters' common shape; its id is the order's."""
    related = (capture.get("supplementary_data") or {}).get("related_ids") or {}
    order_id = str(related.get("order_id") or "")
    if not order_id:
        for link in capture.get("links") or []:
            if link.get("rel") == "up" and "/checkout/orders/" in str(link.get("href")):
                order_id = str(link["href"]).rstrip("/").rsplit("/", 1)[-1]
    amount = capture.get("amount") or {}
    currency = str(amount.get("currency_code") or "")
    status = str(capture.get("status") or "")
    reason = str((capture.get("status_details") or {}).get("reason") or "")
    custom_id = str(capture.get("custom_id") or "")
    return IntentResult(
        id=order_id,
        status={"COMPLETED": "succeeded", "DECLINED": "canceled", "FAILED": "canceled"}.get(
            status, "processing"
        ),
        amount_minor=_minor(str(amount.get("value") or ""), currency),
        currency=currency,
        latest_charge=str(capture.get("id") or ""),
        failure_code=f"capture_{status.lower()}" if status in ("DECLINED", "FAILED") else "",
        failure_message=reason,
        metadata={ATTEMPT_METADATA_KEY: custom_id} if custom_id else {},
    )


# --- orders -----------------------------------------------------------------------------------


def _purchase_unit(
    amount: Decimal, currency: str, custom_id: str, reference_id: str, description: str
) -> dict[str, Any]:
    """An order's one purchase unit: the amount as PayPal's decimal string, our key as its
    custom id (what its capture carries back), the invoice as its reference."""
    unit: dict[str, Any] = {
        "reference_id": reference_id[:256],
        "custom_id": custom_id[:127],
        "amount": {"currency_code": currency, "value": amount_value(amount, currency)},
    }
    if description:
        unit["description"] = description[:127]
    return unit


def _read(path: str) -> dict[str, Any] | None:
    """A resource by its path; None when PayPal has no such thing."""
    status, body = _request("GET", path)
    if status == 404:
        return None
    if status != 200:
        raise _refusal(status, body)
    return body


def order_create(
    *,
    amount: Decimal,
    currency: str,
    request_id: str,
    custom_id: str,
    reference_id: str,
    description: str = "",
    return_url: str = "",
    cancel_url: str = "",
) -> PayPalOrder:
    """Create an order to be approved by the payer; the same ``request_id`` creates one order.
    The payer comes back to ``return_url`` (``cancel_url``), else to the configured ones."""
    unit = _purchase_unit(amount, currency, custom_id, reference_id, description)
    context: dict[str, Any] = {"user_action": "PAY_NOW", "shipping_preference": "NO_SHIPPING"}
    for key, given, setting in (
        ("return_url", return_url, "PAYPAL_RETURN_URL"),
        ("cancel_url", cancel_url, "PAYPAL_CANCEL_URL"),
    ):
        if given or getattr(settings, setting, ""):
            context[key] = given or getattr(settings, setting)
    status, body = _request(
        "POST",
        "/v2/checkout/orders",
        body={
            "intent": "CAPTURE",
            "purchase_units": [unit],
            "payment_source": {"paypal": {"experience_context": context}},
        },
        request_id=request_id,
    )
    if status not in (200, 201):
        raise _refusal(status, body)
    order = order_from(body)
    if not order.id or not order.approve_url:
        raise ProcessorRequestError(code="bad_response", message="PayPal gave no approval link.")
    return order


def order_capture(*, order_id: str, request_id: str) -> PayPalOrder:
    """Capture an approved order. The same ``request_id`` captures once (PayPal replays the
    first answer); an order captured before is read back rather than refused."""
    status, body = _request(
        "POST", f"/v2/checkout/orders/{_safe(order_id)}/capture", body={}, request_id=request_id
    )
    if status in (200, 201):
        return order_from(body)
    refusal = _refusal(status, body)
    if refusal.code == "order_already_captured":
        found = order_get(order_id)
        if found is not None:
            return found
    raise refusal


def order_get(order_id: str) -> PayPalOrder | None:
    body = _read(f"/v2/checkout/orders/{_safe(order_id)}")
    return None if body is None else order_from(body)


def _safe(order_id: str) -> str:
    """A PayPal id (order, setup or payment token) safe to put in a path."""
    if not order_id or len(order_id) > 64 or not order_id.replace("-", "").isalnum():
        raise ProcessorRequestError(code="invalid_order_id", message="Not a PayPal id.")
    return order_id


# --- saved PayPal wallets (Payment Method Tokens v3) and charging them -------------------------
#
# https://developer.paypal.com/docs/api/payment-tokens/v3/ : a setup token is created with
# our return and cancel addresses, the payer approves it at PayPal (a billing agreement), and
# the approved setup token is exchanged for a payment token: the saved wallet, charged later
# without the payer by an order whose payment source is that token (``vault_id``).

# Why a vaulted charge is made: by us, for a bill the payer agreed to be charged for.
STORED_CREDENTIAL = {
    "payment_initiator": "MERCHANT",
    "payment_type": "UNSCHEDULED",
    "usage": "SUBSEQUENT",
}


@dataclass(frozen=True, slots=True)
class SetupToken:
    id: str
    status: str
    approve_url: str = ""
    customer_id: str = ""
    merchant_customer_id: str = ""


@dataclass(frozen=True, slots=True)
class PaymentToken:
    """A saved PayPal wallet: the token charged, PayPal's customer, and the payer's login."""

    id: str
    customer_id: str
    merchant_customer_id: str = ""
    email: str = ""
    payer_id: str = ""


def setup_token_from(data: Mapping[str, Any]) -> SetupToken:
    customer = data.get("customer") or {}
    approve = ""
    for link in data.get("links") or []:
        if link.get("rel") == "approve":
            approve = str(link.get("href") or "")
    return SetupToken(
        id=str(data.get("id") or ""),
        status=str(data.get("status") or ""),
        approve_url=approve,
        customer_id=str(customer.get("id") or ""),
        merchant_customer_id=str(customer.get("merchant_customer_id") or ""),
    )


def payment_token_from(data: Mapping[str, Any]) -> PaymentToken:
    customer = data.get("customer") or {}
    wallet = (data.get("payment_source") or {}).get("paypal") or {}
    return PaymentToken(
        id=str(data.get("id") or ""),
        customer_id=str(customer.get("id") or ""),
        merchant_customer_id=str(customer.get("merchant_customer_id") or ""),
        email=str(wallet.get("email_address") or ""),
        payer_id=str(wallet.get("payer_id") or ""),
    )


def setup_token_create(
    *,
    request_id: str,
    merchant_customer_id: str,
    return_url: str,
    cancel_url: str,
    description: str = "",
    paypal_customer_id: str = "",
) -> SetupToken:
    """A setup token for saving the payer's PayPal wallet, to be approved at the returned
    link; PayPal sends the payer back to ``return_url`` (or ``cancel_url``). A customer
    known to PayPal (``paypal_customer_id``) gets the wallet added to its vault."""
    customer: dict[str, str] = {"merchant_customer_id": merchant_customer_id[:64]}
    if paypal_customer_id:
        customer["id"] = paypal_customer_id
    wallet: dict[str, Any] = {
        "usage_type": "MERCHANT",
        "usage_pattern": "RECURRING_POSTPAID",
        "customer_type": "CONSUMER",
        "permit_multiple_payment_tokens": True,
        "experience_context": {
            "shipping_preference": "NO_SHIPPING",
            "return_url": return_url,
            "cancel_url": cancel_url,
        },
    }
    if description:
        wallet["description"] = description[:127]
    status, body = _request(
        "POST",
        "/v3/vault/setup-tokens",
        body={"payment_source": {"paypal": wallet}, "customer": customer},
        request_id=request_id,
    )
    if status not in (200, 201):
        raise _refusal(status, body)
    token = setup_token_from(body)
    if not token.id or not token.approve_url:
        raise ProcessorRequestError(code="bad_response", message="PayPal gave no approval link.")
    return token


def setup_token_get(setup_token_id: str) -> SetupToken | None:
    body = _read(f"/v3/vault/setup-tokens/{_safe(setup_token_id)}")
    return None if body is None else setup_token_from(body)


def payment_token_create(*, setup_token_id: str, request_id: str) -> PaymentToken:
    """Exchange an approved setup token for the payment token of the saved wallet (the same
    ``request_id`` gets the same token back)."""
    status, body = _request(
        "POST",
        "/v3/vault/payment-tokens",
        body={"payment_source": {"token": {"id": setup_token_id, "type": "SETUP_TOKEN"}}},
        request_id=request_id,
    )
    if status not in (200, 201):
        raise _refusal(status, body)
    token = payment_token_from(body)
    if not token.id or not token.customer_id:
        raise ProcessorRequestError(code="bad_response", message="PayPal gave no payment token.")
    return token


def payment_token_delete(payment_token_id: str) -> bool:
    """Delete a saved wallet at PayPal; False when PayPal no longer has it."""
    status, body = _request("DELETE", f"/v3/vault/payment-tokens/{_safe(payment_token_id)}")
    if status in (200, 204):
        return True
    if status == 404:
        return False
    raise _refusal(status, body)


def order_charge_vaulted(
    *,
    amount: Decimal,
    currency: str,
    vault_id: str,
    request_id: str,
    custom_id: str,
    reference_id: str,
    description: str = "",
) -> PayPalOrder:
    """Charge a saved wallet without the payer: an order on the payment token, which PayPal
    completes (captures) at once. The same ``request_id`` makes one order and one capture;
    PayPal's refusal (instrument declined, account closed, ...) raises ProcessorDeclined."""
    unit = _purchase_unit(amount, currency, custom_id, reference_id, description)
    status, body = _request(
        "POST",
        "/v2/checkout/orders",
        body={
            "intent": "CAPTURE",
            "purchase_units": [unit],
            "payment_source": {
                "paypal": {"vault_id": vault_id, "stored_credential": STORED_CREDENTIAL}
            },
        },
        request_id=request_id,
    )
    if status not in (200, 201):
        raise _refusal(status, body)
    order = order_from(body)
    if not order.id:
        raise ProcessorRequestError(code="bad_response", message="PayPal gave no order.")
    return order


# --- webhooks ---------------------------------------------------------------------------------


def webhook_event_verify(*, payload: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
    """The event of a webhook request that PayPal confirms it sent (verification_status
    SUCCESS); anything else raises WebhookRefused. Nothing is written before or during."""
    webhook_id = getattr(settings, "PAYPAL_WEBHOOK_ID", "") or ""
    if not webhook_id:
        raise ProcessorNotConfigured("PayPal webhooks are not configured (PAYPAL_WEBHOOK_ID).")
    transmission = {}
    for field, header in TRANSMISSION_HEADERS.items():
        value = headers.get(header)
        if not value:
            raise WebhookRefused(f"The {header} header is missing.")
        transmission[field] = value
    try:
        event = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise WebhookRefused("The webhook body is not JSON.") from None
    if not isinstance(event, dict) or not event.get("id") or not event.get("event_type"):
        raise WebhookRefused("The webhook body is not a PayPal event.")
    try:
        status, body = _request(
            "POST",
            "/v1/notifications/verify-webhook-signature",
            body={**transmission, "webhook_id": webhook_id, "webhook_event": event},
        )
    except (ProcessorUnreachable, ProcessorRequestError) as exc:
        raise WebhookVerificationUnavailable(
            f"PayPal could not verify the webhook now: {exc}"
        ) from exc
    if status != 200 or body.get("verification_status") != "SUCCESS":
        raise WebhookRefused("PayPal did not verify the webhook signature.")
    return event
