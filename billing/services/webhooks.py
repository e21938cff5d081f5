"""Processor webhooks (Stripe, PayPal, Coinbase Commerce): verified before anything is
written, stored once per provider and event id, applied once (RELIABILITY.md B8, L8).

Applying is order-independent: a success is final and a late failure notice of the same intent
changes nothing, so any delivery order of the same events ends in the same state.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from djmoney.money import Money

from billing.models import (
    Invoice,
    Payment,
    PaymentMethod,
    ProcessorAttempt,
    Refund,
    WebhookEvent,
)
from billing.processors import IntentResult, ProcessorUnreachable
from billing.processors import coinbase as coinbase_adapter
from billing.processors import paypal as paypal_adapter
from billing.processors import stripe as stripe_adapter
from billing.services.card_setup import card_setup_complete
from billing.services.processor_payments import (
    attempt_apply_delayed,
    attempt_apply_failure,
    attempt_apply_intent,
    checkout_session_apply,
)
from billing.services.refunds import stripe_refund_record
from billing.services.wallet_setup import wallet_token_apply
from core.exceptions import DomainError
from core.money import minor_unit_exponent

logger = logging.getLogger(__name__)

INTENT_EVENTS = frozenset(
    {
        "payment_intent.succeeded",
        "payment_intent.payment_failed",
        "payment_intent.canceled",
        "payment_intent.processing",
    }
)
# The hosted invoice page's Checkout Sessions: paid, paid later (bank debits), failed, expired.
CHECKOUT_EVENTS = frozenset(
    {
        "checkout.session.completed",
        "checkout.session.async_payment_succeeded",
        "checkout.session.async_payment_failed",
        "checkout.session.expired",
    }
)
# A refund made here or in the Stripe dashboard: booked once it has succeeded.
REFUND_EVENTS = frozenset({"refund.created", "refund.updated", "charge.refund.updated"})
# Kept for the module that acts on them later: disputes (receivables).
# Stored for receivables, which turns them into disputes (receivables.chargeback_events_apply).
STORED_ONLY = frozenset(
    {"charge.dispute.created", "charge.dispute.updated", "charge.dispute.closed"}
)
PAYPAL_STORED_ONLY = frozenset(
    {
        "CHECKOUT.ORDER.APPROVED",
        "PAYMENT.CAPTURE.REFUNDED",
        "PAYMENT.CAPTURE.REVERSED",
        "CUSTOMER.DISPUTE.CREATED",
    }
)


class WebhookRetryLater(DomainError):
    """Applying the event needed the processor, which did not answer: 503, sent again."""

    code = "processor_unreachable"
    status_code = 503


@dataclass(frozen=True, slots=True)
class WebhookReceipt:
    event: WebhookEvent
    duplicate: bool


def stripe_webhook_receive(*, payload: bytes, signature: str | None) -> WebhookReceipt:
    """Verify a Stripe webhook request and apply its event once. A refused request raises
    WebhookRefused before any database access."""
    event = stripe_adapter.webhook_event_verify(payload=payload, signature=signature)
    return webhook_event_apply(provider=stripe_adapter.NAME, event=event)


def paypal_webhook_receive(*, payload: bytes, headers: Any) -> WebhookReceipt:
    """Verify a PayPal webhook request with PayPal and apply its event once. An unverified
    request raises WebhookRefused before any database access."""
    event = paypal_adapter.webhook_event_verify(payload=payload, headers=headers)
    return webhook_event_apply(provider=paypal_adapter.NAME, event=event)


def coinbase_webhook_receive(*, payload: bytes, signature: str | None) -> WebhookReceipt:
    """Verify a Coinbase Commerce webhook request (HMAC of its exact bytes) and apply its
    event once. A refused request raises WebhookRefused before any database access."""
    event = coinbase_adapter.webhook_event_verify(payload=payload, signature=signature)
    return webhook_event_apply(provider=coinbase_adapter.NAME, event=event)


def webhook_event_apply(*, provider: str, event: dict[str, Any]) -> WebhookReceipt:
    """Store the event (once per provider and id) and apply it. A replay of an applied event
    does nothing; one whose application failed is tried again."""
    with transaction.atomic():
        stored, created = WebhookEvent.objects.get_or_create(
            provider=provider,
            event_id=str(event["id"])[:200],
            defaults={
                "type": str(event.get("type") or event.get("event_type") or "")[:100],
                "payload": event,
            },
        )
        stored = WebhookEvent.objects.select_for_update().get(pk=stored.pk)
        if stored.processed_at is not None:
            return WebhookReceipt(event=stored, duplicate=True)
        retry: WebhookRetryLater | None = None
        try:
            with transaction.atomic():
                outcome = _APPLY[provider](stored.type, event)
        except ProcessorUnreachable as exc:
            # Stored, not applied: the processor sends it again on the 503, and it is applied.
            stored.outcome = f"error: the processor did not answer ({exc}); to be retried"[:500]
            stored.save(update_fields=["outcome"])
            retry = WebhookRetryLater("The processor did not answer; send the event again.")
        except DomainError as exc:
            logger.error("Webhook event %s %s not applied: %s", provider, stored.event_id, exc)
            stored.outcome = f"error {exc.code}: {exc.message}"[:500]
            stored.save(update_fields=["outcome"])
            return WebhookReceipt(event=stored, duplicate=not created)
        if retry is None:
            stored.processed_at = timezone.now()
            stored.outcome = outcome[:500]
            stored.save(update_fields=["processed_at", "outcome"])
    if retry is not None:
        raise retry
    return WebhookReceipt(event=stored, duplicate=not created)


def _apply(type_: str, event: dict[str, Any]) -> str:
    obj = (event.get("data") or {}).get("object") or {}
    if type_ in INTENT_EVENTS:
        intent = stripe_adapter.intent_from(obj)
        attempt = _attempt_for(intent)
        if attempt is None:
            return "ignored: not a payment intent of ours"
        attempt = attempt_apply_intent(attempt_id=attempt.pk, intent=intent)
        if attempt.payment_id:
            return f"attempt {attempt.pk} {attempt.status}, payment {attempt.payment_id}"
        return f"attempt {attempt.pk} {attempt.status}"
    if type_ in CHECKOUT_EVENTS:
        return _checkout_session(type_, stripe_adapter.checkout_session_from(obj))
    if type_ == "charge.refunded":
        return _charge_refunded(obj)
    if type_ in REFUND_EVENTS:
        return _refunds_record([stripe_adapter.refund_from(obj)])
    if type_ in STORED_ONLY:
        return "stored"
    return "ignored: event type not handled"


def _checkout_session(type_: str, session: stripe_adapter.CheckoutSession) -> str:
    """A Checkout Session of the hosted invoice page: paid (its PaymentIntent, read from
    Stripe, applied), expired or failed (the attempt failed), or still awaiting payment."""
    if session.mode == "setup":
        if type_ != "checkout.session.completed":
            return "stored: a card setup that did not complete"
        return card_setup_complete(session=session)
    key = session.metadata.get(stripe_adapter.ATTEMPT_METADATA_KEY, "")
    found = ProcessorAttempt.objects.filter(processor=stripe_adapter.NAME)
    attempt = (found.filter(idempotency_key=key).first() if key else None) or (
        found.filter(checkout_id=session.id).first() if session.id else None
    )
    if attempt is None:
        return "ignored: not a Checkout Session of ours"
    if type_ == "checkout.session.async_payment_failed":
        attempt = attempt_apply_failure(
            attempt_id=attempt.pk,
            code="payment_failed",
            message="The payer's bank refused the payment made on Stripe's Checkout page.",
        )
    else:
        try:
            attempt = checkout_session_apply(attempt=attempt, session=session)
        except ProcessorUnreachable:
            # The intent could not be read now; the scheduled check reads it later.
            return f"attempt {attempt.pk}: Stripe did not answer; left for the scheduled check"
    return _attempt_outcome(attempt)


def _charge_refunded(charge: dict[str, Any]) -> str:
    """Book each succeeded refund of a charge of ours: those the charge carries (API versions
    before 2022-11-15), or else those Stripe lists for it."""
    ids = [i for i in (str(charge.get("id") or ""), str(charge.get("payment_intent") or "")) if i]
    ours = Payment.objects.filter(processor=stripe_adapter.NAME, processor_charge_id__in=ids)
    if not ids or not ours.exists():
        return "ignored: not a charge of ours"
    refunds = stripe_adapter.charge_refunds(charge)
    if refunds is None:
        refunds = list(stripe_adapter.refunds_list(charge_id=ids[0]))
    return _refunds_record(refunds)


def _refunds_record(refunds: list[stripe_adapter.RefundResult]) -> str:
    booked = [r for r in refunds if stripe_refund_record(refund=r) is not None]
    reversed_ = [
        r for r in refunds if r.failed and Refund.objects.filter(processor_refund_id=r.id).exists()
    ]
    for refund in reversed_:
        # Rare: Stripe failed a refund after reporting it succeeded (e.g. a closed card).
        logger.error("Stripe refund %s failed after it was booked; reverse it.", refund.id)
    if reversed_:
        return "refund failed after it was booked, to reverse by hand: " + ", ".join(
            r.id for r in reversed_
        )
    if booked:
        return "refunds booked: " + ", ".join(r.id for r in booked)
    if refunds and all(r.succeeded for r in refunds):
        return "ignored: not a refund of a payment of ours"
    return "stored: no succeeded refund to book"


def _attempt_for(intent: IntentResult) -> ProcessorAttempt | None:
    if intent.id:
        found = ProcessorAttempt.objects.filter(
            processor=stripe_adapter.NAME, processor_intent_id=intent.id
        ).first()
        if found is not None:
            return found
    key = intent.metadata.get(stripe_adapter.ATTEMPT_METADATA_KEY, "")
    if not key:
        return None
    found = ProcessorAttempt.objects.filter(idempotency_key=key).first()
    return found if found is not None else _attempt_recreate(intent, key)


def _attempt_recreate(intent: IntentResult, key: str) -> ProcessorAttempt | None:
    """The attempt row was lost with its transaction after Stripe charged (the charge ran
    inside a caller's transaction that then failed): rebuild it from the intent's metadata,
    which only this service writes and Stripe signed."""
    meta = intent.metadata
    try:
        method = PaymentMethod.objects.get(pk=int(meta.get("payment_method_id", "")))
        invoice_id = int(meta["invoice_id"]) if meta.get("invoice_id") else None
    except (ValueError, KeyError, PaymentMethod.DoesNotExist):
        return None
    invoice = Invoice.objects.filter(pk=invoice_id).first() if invoice_id else None
    if str(method.customer_id) != meta.get("customer_id") or (
        invoice is not None and invoice.customer_id != method.customer_id
    ):
        return None
    currency = intent.currency or (invoice.currency if invoice else "")
    if not currency or intent.amount_minor <= 0:
        return None
    amount = Money(Decimal(intent.amount_minor).scaleb(-minor_unit_exponent(currency)), currency)
    try:
        with transaction.atomic():
            return ProcessorAttempt.objects.create(
                processor=stripe_adapter.NAME,
                customer_id=method.customer_id,
                payment_method=method,
                invoice=invoice,
                currency=currency,
                amount=amount,
                amount_minor=intent.amount_minor,
                idempotency_key=key,
                processor_intent_id=intent.id,
            )
    except IntegrityError:
        found = ProcessorAttempt.objects.filter(idempotency_key=key).first()
        if found is None:
            logger.error("Stripe intent %s of a lost attempt could not be matched.", intent.id)
        return found


def _paypal_apply(type_: str, event: dict[str, Any]) -> str:
    resource = event.get("resource") or {}
    if type_ in ("PAYMENT.CAPTURE.COMPLETED", "PAYMENT.CAPTURE.DENIED", "PAYMENT.CAPTURE.PENDING"):
        intent = paypal_adapter.capture_intent(resource)
        attempt = _hosted_attempt_for(paypal_adapter.NAME, intent)
        if attempt is None:
            return "ignored: not a PayPal order of ours"
        _same_currency(attempt, intent)
        if type_ == "PAYMENT.CAPTURE.DENIED":
            attempt = attempt_apply_failure(
                attempt_id=attempt.pk,
                code="capture_denied",
                message=intent.failure_message or "PayPal denied the capture.",
                intent_id=intent.id,
                charge_id=intent.latest_charge,
            )
        else:
            attempt = attempt_apply_intent(attempt_id=attempt.pk, intent=intent)
        return _attempt_outcome(attempt)
    if type_ == "VAULT.PAYMENT-TOKEN.CREATED":
        return wallet_token_apply(resource)
    if type_ in PAYPAL_STORED_ONLY:
        return "stored"
    return "ignored: event type not handled"


COINBASE_SUCCESS = frozenset({"charge:confirmed", "charge:resolved"})


def _coinbase_apply(type_: str, event: dict[str, Any]) -> str:
    charge = event.get("data") or {}
    if type_ not in (*COINBASE_SUCCESS, "charge:failed", "charge:delayed", "charge:pending"):
        return "ignored: event type not handled"
    status = "succeeded" if type_ in COINBASE_SUCCESS else "processing"
    intent = coinbase_adapter.charge_intent(charge, status=status)
    attempt = _hosted_attempt_for(coinbase_adapter.NAME, intent)
    if attempt is None:
        return "ignored: not a Coinbase charge of ours"
    _same_currency(attempt, intent)
    reason = coinbase_adapter.timeline_reason(charge)
    if type_ == "charge:failed":
        attempt = attempt_apply_failure(
            attempt_id=attempt.pk,
            code="charge_failed",
            message=f"Coinbase: the charge failed ({reason or 'no payment'}).",
            intent_id=intent.id,
            charge_id=intent.latest_charge,
        )
    elif type_ == "charge:delayed":
        attempt = attempt_apply_delayed(
            attempt_id=attempt.pk,
            message=(
                f"Coinbase: a payment arrived after the charge expired ({reason or 'delayed'}); "
                "resolve it in Coinbase Commerce."
            ),
        )
    else:
        attempt = attempt_apply_intent(attempt_id=attempt.pk, intent=intent)
    return _attempt_outcome(attempt)


def _hosted_attempt_for(processor: str, intent: IntentResult) -> ProcessorAttempt | None:
    """Our attempt of a PayPal order or Coinbase charge: by the key we wrote into it, or by
    the processor's id of it."""
    key = intent.metadata.get(paypal_adapter.ATTEMPT_METADATA_KEY, "")
    if key:
        found = ProcessorAttempt.objects.filter(processor=processor, idempotency_key=key).first()
        if found is not None:
            return found
    if intent.id:
        return ProcessorAttempt.objects.filter(
            processor=processor, processor_intent_id=intent.id
        ).first()
    return None


def _same_currency(attempt: ProcessorAttempt, intent: IntentResult) -> None:
    if intent.currency and intent.currency != attempt.currency:
        raise DomainError(
            f"The processor reports {intent.currency} for attempt {attempt.pk} in "
            f"{attempt.currency}; not applied.",
            code="currency_mismatch",
        )


def _attempt_outcome(attempt: ProcessorAttempt) -> str:
    if attempt.payment_id:
        return f"attempt {attempt.pk} {attempt.status}, payment {attempt.payment_id}"
    return f"attempt {attempt.pk} {attempt.status}"


_APPLY = {
    stripe_adapter.NAME: _apply,
    paypal_adapter.NAME: _paypal_apply,
    coinbase_adapter.NAME: _coinbase_apply,
}
