"""Coinbase Commerce through its REST API (charges), with ``requests``: no SDK.

A charge is created for what is due on an invoice and the payer pays it on Coinbase's hosted
page. Whether it was paid is learnt ONLY from signed webhooks (charge:confirmed): nothing here
polls. The signature is the hex HMAC-SHA256 of the raw body keyed with the shared secret.

Settings (read with getattr so the app starts without them): COINBASE_COMMERCE_API_KEY,
COINBASE_COMMERCE_API_BASE, COINBASE_COMMERCE_WEBHOOK_SECRET (comma-separated during a
rotation), COINBASE_COMMERCE_TIMEOUT_SECONDS, COINBASE_COMMERCE_REDIRECT_URL and
COINBASE_COMMERCE_CANCEL_URL.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import requests
from django.conf import settings

from billing.processors import (
    IntentResult,
    ProcessorNotConfigured,
    ProcessorRequestError,
    ProcessorUnreachable,
    WebhookRefused,
)
from core.exceptions import DomainError
from core.money import check_amount, round_money, to_minor_units

# The name the system settings give this integration (integrations.payment_processors).
NAME = "coinbase_commerce"
ATTEMPT_METADATA_KEY = "backoffice_attempt"
API_VERSION = "2018-03-22"
DEFAULT_API_BASE = "https://api.commerce.coinbase.com"
DEFAULT_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class CoinbaseCharge:
    id: str
    code: str
    hosted_url: str
    metadata: dict[str, str]


def amount_value(amount: Decimal, currency: str) -> str:
    """The local price as a decimal string in the currency's minor unit
    (USD 35.20 -> "35.20", JPY 1999 -> "1999", KWD 18.600 -> "18.600")."""
    return f"{round_money(check_amount(amount, currency), currency):f}"


def _config() -> tuple[str, str, float]:
    api_key = getattr(settings, "COINBASE_COMMERCE_API_KEY", "") or ""
    if not api_key:
        raise ProcessorNotConfigured(
            "Coinbase Commerce is not configured (COINBASE_COMMERCE_API_KEY is not set)."
        )
    base = (getattr(settings, "COINBASE_COMMERCE_API_BASE", "") or DEFAULT_API_BASE).rstrip("/")
    timeout = float(getattr(settings, "COINBASE_COMMERCE_TIMEOUT_SECONDS", DEFAULT_TIMEOUT_SECONDS))
    return base, api_key, timeout


def coinbase_configured() -> None:
    """Refuses at once, before any attempt is written, when Coinbase is not configured."""
    _config()


def charge_create(
    *,
    amount: Decimal,
    currency: str,
    name: str,
    description: str,
    metadata: Mapping[str, str],
    redirect_url: str = "",
    cancel_url: str = "",
) -> CoinbaseCharge:
    """Create a fixed-price charge and return its hosted page. Coinbase has no idempotency
    key: a charge whose answer is lost is simply never shown to anyone. The payer comes back
    to ``redirect_url`` (``cancel_url``), else to the configured ones."""
    base, api_key, timeout = _config()
    body: dict[str, Any] = {
        "name": name[:100],
        "description": description[:200],
        "pricing_type": "fixed_price",
        "local_price": {"amount": amount_value(amount, currency), "currency": currency},
        "metadata": dict(metadata),
    }
    for key, given, setting in (
        ("redirect_url", redirect_url, "COINBASE_COMMERCE_REDIRECT_URL"),
        ("cancel_url", cancel_url, "COINBASE_COMMERCE_CANCEL_URL"),
    ):
        if given or getattr(settings, setting, ""):
            body[key] = given or getattr(settings, setting)
    try:
        response = requests.post(
            f"{base}/charges",
            data=json.dumps(body),
            headers={
                "X-CC-Api-Key": api_key,
                "X-CC-Version": API_VERSION,
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
            timeout=timeout,
        )
    except requests.RequestException as exc:
        raise ProcessorUnreachable(f"Coinbase Commerce: {exc}") from exc
    if response.status_code >= 500:
        raise ProcessorUnreachable(f"Coinbase Commerce: HTTP {response.status_code}")
    try:
        answer = response.json()
    except ValueError:
        answer = {}
    data = answer.get("data") if isinstance(answer, dict) else None
    if response.status_code not in (200, 201) or not isinstance(data, dict):
        error = (answer.get("error") if isinstance(answer, dict) else None) or {}
        raise ProcessorRequestError(
            code=str(error.get("type") or f"http_{response.status_code}"),
            message=str(error.get("message") or "Coinbase Commerce refused the charge."),
        )
    if not data.get("hosted_url") or not data.get("code"):
        raise ProcessorRequestError(code="bad_response", message="Coinbase gave no hosted page.")
    return CoinbaseCharge(
        id=str(data.get("id") or ""),
        code=str(data["code"]),
        hosted_url=str(data["hosted_url"]),
        metadata={str(k): str(v) for k, v in (data.get("metadata") or {}).items()},
    )


def charge_intent(charge: Mapping[str, Any], *, status: str) -> IntentResult:
    """A charge (a webhook event's data) in the adapters' common shape. Its id is the
    charge's id; the payment is recorded under the charge code."""
    local = (charge.get("pricing") or {}).get("local") or {}
    currency = str(local.get("currency") or "")
    try:
        amount_minor = to_minor_units(Decimal(str(local.get("amount"))), currency)
    except (InvalidOperation, DomainError, ValueError):
        amount_minor = 0
    return IntentResult(
        id=str(charge.get("id") or ""),
        status=status,
        amount_minor=amount_minor,
        currency=currency,
        latest_charge=str(charge.get("code") or ""),
        metadata={str(k): str(v) for k, v in (charge.get("metadata") or {}).items()},
    )


def timeline_reason(charge: Mapping[str, Any]) -> str:
    """The last status of the charge's timeline with its context ("EXPIRED", "UNRESOLVED
    UNDERPAID"), for a failure message."""
    timeline = charge.get("timeline") or []
    last = timeline[-1] if isinstance(timeline, list) and timeline else {}
    if not isinstance(last, Mapping):
        return ""
    return " ".join(str(last.get(k)) for k in ("status", "context") if last.get(k))


def webhook_secrets() -> list[str]:
    raw = getattr(settings, "COINBASE_COMMERCE_WEBHOOK_SECRET", "") or ""
    return [s.strip() for s in str(raw).split(",") if s.strip()]


def webhook_event_verify(*, payload: bytes, signature: str | None) -> dict[str, Any]:
    """The event of a webhook request whose X-CC-Webhook-Signature is the HMAC-SHA256 of its
    exact bytes under one of our secrets (compared in constant time)."""
    secrets = webhook_secrets()
    if not secrets:
        raise ProcessorNotConfigured(
            "Coinbase webhooks are not configured (COINBASE_COMMERCE_WEBHOOK_SECRET)."
        )
    given = (signature or "").strip().lower().encode("utf-8", "replace")
    if not given:
        raise WebhookRefused("The X-CC-Webhook-Signature header is missing.")
    if not any(
        hmac.compare_digest(
            hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest().encode(), given
        )
        for secret in secrets
    ):
        raise WebhookRefused("Invalid X-CC-Webhook-Signature.")
    try:
        body = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise WebhookRefused("The webhook body is not JSON.") from None
    event = body.get("event") if isinstance(body, dict) else None
    if (
        not isinstance(event, dict)
        or not event.get("id")
        or not event.get("type")
        or not isinstance(event.get("data"), dict)
    ):
        raise WebhookRefused("The webhook body is not a Coinbase Commerce event.")
    return event
