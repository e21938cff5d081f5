"""Charging invoices through a processor (Stripe), with every attempt recorded.

The attempt row is committed before the processor is called, and the processor is called
outside any transaction. Its answer is then applied in one transaction that locks the
attempt: a success records one payment (``payment_record`` is idempotent on the charge id and
the attempt keeps its payment), a decline fails the attempt with the processor's code, and no
answer leaves the attempt UNKNOWN (RELIABILITY.md F4). Nothing charges an unknown attempt
again: ``processor_attempts_resolve`` asks the processor what became of it, and a webhook may
tell first (F5).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from djmoney.money import Money

from billing.enums import InvoiceStatus, PaymentMethodType
from billing.exceptions import BillingError
from billing.models import Invoice, PaymentMethod, ProcessorAttempt
from billing.models.processors import OPEN_ATTEMPT, AttemptStatus
from billing.processors import (
    ChargeInProgress,
    IntentResult,
    PaymentMethodUnusable,
    ProcessorDeclined,
    ProcessorUnreachable,
)
from billing.processors import stripe as stripe_adapter
from billing.services.payments import AllocationInput, payment_record
from core.exceptions import DomainError, NotFound, PermissionDeniedError
from core.money import minor_unit_exponent, round_money, to_minor_units

logger = logging.getLogger(__name__)

# A pending attempt older than this had its process die mid-charge; the resolver takes it.
STALE_AFTER = timedelta(minutes=5)
# An intent not found this long after the attempt was never created: nothing was charged.
NOT_FOUND_FINAL_AFTER = timedelta(minutes=30)


def _metadata(attempt: ProcessorAttempt) -> dict[str, str]:
    return {
        stripe_adapter.ATTEMPT_METADATA_KEY: attempt.idempotency_key,
        "invoice_id": str(attempt.invoice_id or ""),
        "customer_id": str(attempt.customer_id),
        "payment_method_id": str(attempt.payment_method_id),
    }


def _start(*, invoice_id: int, payment_method_id: int, actor: Any) -> ProcessorAttempt:
    with transaction.atomic():
        try:
            invoice = Invoice.objects.select_for_update().get(pk=invoice_id)
        except Invoice.DoesNotExist:
            raise NotFound(f"No invoice {invoice_id}.") from None
        method = PaymentMethod.objects.filter(pk=payment_method_id).first()
        if method is None or method.customer_id != invoice.customer_id:
            raise PaymentMethodUnusable(
                f"Payment method {payment_method_id} is not one of this customer's.",
                field="payment_method",
            )
        if method.detached_at is not None:
            raise PaymentMethodUnusable("This payment method was removed.", field="payment_method")
        if method.processor != stripe_adapter.NAME or not method.processor_customer_id:
            raise PaymentMethodUnusable(
                "Only Stripe payment methods can be charged here.", field="payment_method"
            )
        if invoice.status != InvoiceStatus.OPEN:
            raise BillingError(
                f"Invoice {invoice} is {invoice.status}; there is nothing to charge."
            )
        amount = round_money(invoice.amount_due.amount, invoice.currency)
        if amount <= 0:
            raise BillingError(f"Nothing is due on invoice {invoice}.")
        if ProcessorAttempt.objects.filter(invoice=invoice, status__in=OPEN_ATTEMPT).exists():
            raise ChargeInProgress(
                f"A charge of invoice {invoice} is already in progress; its outcome is awaited."
            )
        try:
            with transaction.atomic():
                return ProcessorAttempt.objects.create(
                    processor=stripe_adapter.NAME,
                    customer_id=invoice.customer_id,
                    payment_method=method,
                    invoice=invoice,
                    currency=invoice.currency,
                    amount=Money(amount, invoice.currency),
                    amount_minor=to_minor_units(amount, invoice.currency),
                    created_by=actor if getattr(actor, "pk", None) else None,
                )
        except IntegrityError:
            raise ChargeInProgress(
                f"A charge of invoice {invoice} is already in progress; its outcome is awaited."
            ) from None


def invoice_charge(*, invoice_id: int, payment_method_id: int, actor: Any) -> ProcessorAttempt:
    """Charge what is due on an open invoice to a saved Stripe payment method, off-session.

    Returns the attempt: succeeded (with its payment), failed (with the decline code), pending
    (the processor is still working, e.g. a bank debit) or unknown (no answer; resolved later).
    """
    if actor is not None and not actor.has_perm("billing.charge_invoice"):
        raise PermissionDeniedError("Your role does not allow charging invoices.")
    stripe_adapter.stripe_client()  # refuses at once, before any attempt, if not configured
    attempt = _start(invoice_id=invoice_id, payment_method_id=payment_method_id, actor=actor)
    method = attempt.payment_method
    try:
        intent = stripe_adapter.payment_intent_charge(
            amount_minor=attempt.amount_minor,
            currency=attempt.currency,
            customer=method.processor_customer_id,
            payment_method=method.processor_token,
            idempotency_key=attempt.idempotency_key,
            metadata=_metadata(attempt),
            description=f"Invoice {attempt.invoice}",
        )
    except ProcessorDeclined as exc:
        return _apply_failure(
            attempt.pk,
            code=exc.code,
            message=exc.message,
            intent_id=exc.intent_id,
            charge_id=exc.charge_id,
        )
    except ProcessorUnreachable as exc:
        logger.warning("Stripe did not answer for attempt %s: %s", attempt.pk, exc)
        return _apply_unknown(attempt.pk, message=f"The processor did not answer: {exc}")
    return attempt_apply_intent(attempt_id=attempt.pk, intent=intent)


def _locked(attempt_id: int) -> ProcessorAttempt:
    return ProcessorAttempt.objects.select_for_update().get(pk=attempt_id)


def _apply_unknown(attempt_id: int, *, message: str) -> ProcessorAttempt:
    with transaction.atomic():
        attempt = _locked(attempt_id)
        if attempt.status == AttemptStatus.PENDING:
            attempt.lose_track(message=message)
            attempt.save(update_fields=["status", "failure_message"])
    return attempt


def _apply_failure(
    attempt_id: int, *, code: str, message: str, intent_id: str = "", charge_id: str = ""
) -> ProcessorAttempt:
    with transaction.atomic():
        attempt = _locked(attempt_id)
        if attempt.status == AttemptStatus.SUCCEEDED:
            return attempt  # a success is final: a late failure notice changes nothing
        attempt.fail(code=code or "declined", message=message)
        attempt.processor_intent_id = intent_id or attempt.processor_intent_id
        attempt.processor_charge_id = charge_id or attempt.processor_charge_id
        attempt.save(
            update_fields=[
                "status",
                "failure_code",
                "failure_message",
                "completed_at",
                "processor_intent_id",
                "processor_charge_id",
            ]
        )
    return attempt


def _allocations(attempt: ProcessorAttempt, amount: Decimal) -> list[AllocationInput] | None:
    """To the invoice charged while it can take the money; otherwise oldest due first and
    the rest as customer credit (the money was collected all the same)."""
    invoice = attempt.invoice
    if invoice is None:
        return None
    invoice.refresh_from_db()
    if invoice.status == InvoiceStatus.OPEN and invoice.amount_due.amount >= amount:
        return [AllocationInput(invoice_id=invoice.pk, amount=amount)]
    return None


def _apply_success(attempt: ProcessorAttempt, intent: IntentResult) -> ProcessorAttempt:
    if attempt.payment_id is not None:
        return attempt
    amount = Decimal(intent.amount_minor or attempt.amount_minor).scaleb(
        -minor_unit_exponent(attempt.currency)
    )
    payment = payment_record(
        actor=None,
        customer_id=attempt.customer_id,
        amount=amount,
        currency=attempt.currency,
        method=_payment_method_kind(attempt.payment_method),
        reference=f"Stripe {intent.id}",
        allocations=_allocations(attempt, amount),
        processor=stripe_adapter.NAME,
        processor_charge_id=intent.charge_id,
    )
    attempt.succeed(payment=payment)
    attempt.processor_intent_id = intent.id
    attempt.processor_charge_id = intent.latest_charge
    attempt.save(
        update_fields=[
            "status",
            "payment",
            "failure_code",
            "failure_message",
            "completed_at",
            "processor_intent_id",
            "processor_charge_id",
        ]
    )
    return attempt


def _payment_method_kind(method: PaymentMethod) -> str:
    if method.type in (PaymentMethodType.ACH, PaymentMethodType.WIRE_TRANSFER):
        return str(method.type)
    return PaymentMethodType.CREDIT_CARD


def attempt_apply_intent(*, attempt_id: int, intent: IntentResult) -> ProcessorAttempt:
    """Bring an attempt in line with what the processor says about its intent; applying the
    same answer twice does nothing more (one payment per attempt)."""
    with transaction.atomic():
        attempt = _locked(attempt_id)
        if intent.succeeded:
            return _apply_success(attempt, intent)
        if attempt.processor_intent_id != intent.id and intent.id:
            attempt.processor_intent_id = intent.id
            attempt.save(update_fields=["processor_intent_id"])
    if intent.failed:
        return _apply_failure(
            attempt_id,
            code=intent.failure_code or intent.status,
            message=intent.failure_message or f"The payment intent is {intent.status}.",
            intent_id=intent.id,
        )
    return attempt  # processing / requires_action: still open


def processor_attempt_resolve(*, attempt_id: int) -> ProcessorAttempt:
    """Ask the processor what became of an unknown (or stale pending) attempt."""
    attempt = ProcessorAttempt.objects.select_related("payment_method").get(pk=attempt_id)
    if attempt.status not in OPEN_ATTEMPT:
        return attempt
    ProcessorAttempt.objects.filter(pk=attempt.pk).update(
        last_checked_at=timezone.now(), check_count=attempt.check_count + 1
    )
    if attempt.processor_intent_id:
        intent: IntentResult | None = stripe_adapter.payment_intent_get(attempt.processor_intent_id)
    else:
        intent = stripe_adapter.payment_intent_find(
            customer=attempt.payment_method.processor_customer_id,
            attempt_key=attempt.idempotency_key,
            since=attempt.created_at,
        )
    if intent is not None:
        return attempt_apply_intent(attempt_id=attempt.pk, intent=intent)
    if timezone.now() - attempt.created_at >= NOT_FOUND_FINAL_AFTER:
        return _apply_failure(
            attempt.pk,
            code="processor_no_record",
            message="The processor has no payment for this attempt: nothing was charged.",
        )
    return attempt


def processor_attempts_resolve(*, now: Any = None) -> dict[str, int]:
    """Resolve every unknown attempt and every pending one older than STALE_AFTER.
    Returns how many ended in each status (and how many the processor still left open)."""
    now = now or timezone.now()
    ids = list(
        ProcessorAttempt.objects.filter(
            Q(status=AttemptStatus.UNKNOWN)
            | Q(status=AttemptStatus.PENDING, created_at__lt=now - STALE_AFTER)
        ).values_list("pk", flat=True)
    )
    counts: dict[str, int] = {}
    for pk in sorted(ids):
        try:
            status = processor_attempt_resolve(attempt_id=pk).status
        except ProcessorUnreachable:
            status = "unreachable"
        except DomainError as exc:
            logger.error("Attempt %s could not be resolved: %s", pk, exc.message)
            status = "error"
        counts[status] = counts.get(status, 0) + 1
    return counts
