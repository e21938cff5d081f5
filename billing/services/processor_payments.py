"""Charging invoices through a processor (Stripe; PayPal and Coinbase Commerce through their
hosted pages), with every attempt recorded.

The attempt row is committed before the processor is called, and the processor is called
outside any transaction. Its answer is then applied in one transaction that locks the
attempt: a success records one payment (``payment_record`` is idempotent on the charge id and
the attempt keeps its payment), a decline fails the attempt with the processor's code, and no
answer leaves the attempt UNKNOWN (RELIABILITY.md F4). Nothing charges an unknown attempt
again: ``processor_attempts_resolve`` asks the processor what became of it, and a webhook may
tell first (F5). Many charges at once (autopay) follow the same steps in bulk:
``attempts_open`` writes their attempts in one insert, ``attempts_charge`` asks Stripe from a
pool of threads and records the successes in one transaction.

PayPal, Coinbase and Stripe Checkout are paid on the processor's page, so their attempt is
opened when the order, charge or session is created and stays pending until the payer pays:
PayPal's when the approved order is captured (or the scheduled check finds it captured),
Coinbase's only when its signed charge:confirmed webhook arrives, Stripe Checkout's when the
signed webhook (or the scheduled check) finds its PaymentIntent succeeded. Such an attempt is
made out to the customer's hosted-checkout payment method, a row standing for "pays on the
processor's page" that holds no token.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from djmoney.money import Money
from simple_history.utils import bulk_create_with_history

from billing.enums import InvoiceStatus, PaymentMethodType
from billing.exceptions import BillingError
from billing.models import Invoice, Payment, PaymentMethod, ProcessorAttempt, WebhookEvent
from billing.models.processors import OPEN_ATTEMPT, AttemptStatus
from billing.processors import (
    ChargeInProgress,
    IntentResult,
    PaymentDeclined,
    PaymentMethodUnusable,
    ProcessorDeclined,
    ProcessorNotConfigured,
    ProcessorRequestError,
    ProcessorUnreachable,
)
from billing.processors import coinbase as coinbase_adapter
from billing.processors import paypal as paypal_adapter
from billing.processors import stripe as stripe_adapter
from billing.selectors import HOSTED_CHECKOUT_PREFIX
from billing.services.bulk import update_with_history
from billing.services.payments import (
    AllocationInput,
    BatchPaymentInput,
    payment_record,
    payments_record_batch,
)
from core.exceptions import Conflict, DomainError, NotFound, PermissionDeniedError
from core.money import (
    check_amount,
    format_amount,
    minor_unit_exponent,
    round_money,
    to_minor_units,
)

logger = logging.getLogger(__name__)

# A pending attempt older than this had its process die mid-charge; the resolver takes it.
STALE_AFTER = timedelta(minutes=5)
# An intent not found this long after the attempt was never created: nothing was charged.
NOT_FOUND_FINAL_AFTER = timedelta(minutes=30)
# PayPal: an order not approved within 3 hours can no longer be paid.
PAYPAL_ORDER_EXPIRY = timedelta(hours=3)
# PayPal answers a repeated PayPal-Request-Id with its first answer for 6 hours on orders
# (3 on vault tokens): a lost answer is asked again within the shorter.
PAYPAL_REQUEST_ID_KEPT = timedelta(hours=3)
# Processors whose saved methods are charged without the payer.
CHARGEABLE_PROCESSORS = (stripe_adapter.NAME, paypal_adapter.NAME)
# Stripe Checkout: the session is opened for an hour (Stripe's minimum is 30 minutes).
STRIPE_CHECKOUT_EXPIRY = timedelta(hours=1)
# Coinbase Commerce: a charge not paid within an hour expires; a little grace for the webhook.
COINBASE_CHARGE_EXPIRY = timedelta(hours=1, minutes=15)
# The failure code of an attempt the processor has no record of (searched for after a
# missing answer): nothing was charged.
NO_RECORD = "processor_no_record"
PROCESSOR_LABELS = {
    stripe_adapter.NAME: "Stripe",
    paypal_adapter.NAME: "PayPal",
    coinbase_adapter.NAME: "Coinbase Commerce",
}


class CheckoutNotCreated(DomainError):
    """The processor did not create the order or charge; nothing can have been paid."""

    code = "checkout_not_created"
    status_code = 502


def _metadata(attempt: ProcessorAttempt) -> dict[str, str]:
    return {
        stripe_adapter.ATTEMPT_METADATA_KEY: attempt.idempotency_key,
        "invoice_id": str(attempt.invoice_id or ""),
        "customer_id": str(attempt.customer_id),
        "payment_method_id": str(attempt.payment_method_id),
    }


def _start(
    *,
    invoice_id: int,
    payment_method_id: int,
    actor: Any,
    amount: Decimal | None = None,
    allocations: Sequence[AllocationInput] | None = None,
    idempotency_key: str = "",
) -> ProcessorAttempt:
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
        if (
            method.processor not in CHARGEABLE_PROCESSORS
            or not method.processor_customer_id
            or method.processor_token.startswith(HOSTED_CHECKOUT_PREFIX)
        ):
            raise PaymentMethodUnusable(
                "Only a saved Stripe payment method or PayPal wallet can be charged here.",
                field="payment_method",
            )
        processor_configured(method.processor)
        return _attempt_open(
            invoice=invoice,
            method=method,
            actor=actor,
            amount=amount,
            allocations=allocations,
            idempotency_key=idempotency_key,
        )


def _charge_parts(
    invoice: Invoice, amount: Decimal, allocations: Sequence[AllocationInput] | None
) -> list[dict[str, str]]:
    """The invoices a partial charge pays, checked against what each has due (locked, in id
    order): the charged invoice alone, or the allocations given, which include it."""
    check_amount(amount, invoice.currency)
    parts = list(allocations or [AllocationInput(invoice_id=invoice.pk, amount=amount)])
    ids = [p.invoice_id for p in parts]
    if invoice.pk not in ids or len(set(ids)) != len(ids):
        raise BillingError(
            "The allocations name the charged invoice, each invoice once.", field="allocations"
        )
    if sum((p.amount for p in parts), Decimal(0)) != amount or any(p.amount <= 0 for p in parts):
        raise BillingError("The allocations are positive and sum to the amount.", field="amount")
    locked = {
        i.pk: i for i in Invoice.objects.select_for_update().filter(pk__in=ids).order_by("pk")
    }
    for part in parts:
        target = locked.get(part.invoice_id)
        if (
            target is None
            or target.customer_id != invoice.customer_id
            or target.currency != invoice.currency
            or target.status != InvoiceStatus.OPEN
        ):
            raise BillingError(
                f"Invoice {part.invoice_id} is not an open invoice of this customer in "
                f"{invoice.currency}.",
                field="allocations",
            )
        if part.amount > target.amount_due.amount:
            raise BillingError(
                f"{format_amount(part.amount, invoice.currency)} is more than the "
                f"{format_amount(target.amount_due.amount, invoice.currency)} due on "
                f"invoice {target}.",
                field="amount",
            )
    return [{"invoice": str(p.invoice_id), "amount": str(p.amount)} for p in parts]


def _attempt_open(
    *,
    invoice: Invoice,
    method: PaymentMethod,
    actor: Any,
    amount: Decimal | None = None,
    allocations: Sequence[AllocationInput] | None = None,
    idempotency_key: str = "",
) -> ProcessorAttempt:
    """The pending attempt for what is due on the (locked) invoice, or for ``amount`` of it
    (and of the other invoices allocated), unless one is in flight."""
    if invoice.status != InvoiceStatus.OPEN:
        raise BillingError(f"Invoice {invoice} is {invoice.status}; there is nothing to charge.")
    parts: list[dict[str, str]] = []
    if amount is None:
        amount = round_money(invoice.amount_due.amount, invoice.currency)
        if amount <= 0:
            raise BillingError(f"Nothing is due on invoice {invoice}.")
    else:
        parts = _charge_parts(invoice, amount, allocations)
    in_progress = ChargeInProgress(
        f"A charge of invoice {invoice} is already in progress; its outcome is awaited."
    )
    if ProcessorAttempt.objects.filter(invoice=invoice, status__in=OPEN_ATTEMPT).exists():
        raise in_progress
    try:
        with transaction.atomic():
            return ProcessorAttempt.objects.create(
                processor=method.processor,
                customer_id=invoice.customer_id,
                payment_method=method,
                invoice=invoice,
                currency=invoice.currency,
                amount=Money(amount, invoice.currency),
                amount_minor=to_minor_units(amount, invoice.currency),
                allocations=parts,
                created_by=actor if getattr(actor, "pk", None) else None,
                **({"idempotency_key": idempotency_key} if idempotency_key else {}),
            )
    except IntegrityError:
        raise in_progress from None


def _require_charge_permission(actor: Any) -> None:
    if actor is not None and not actor.has_perm("billing.charge_invoice"):
        raise PermissionDeniedError("Your role does not allow charging invoices.")


def processor_configured(processor: str) -> None:
    """Refuses (ProcessorNotConfigured) a charge through a processor that is not configured,
    before any attempt is written."""
    if processor == paypal_adapter.NAME:
        paypal_adapter.paypal_configured()
    else:
        stripe_adapter.stripe_client()


def processors_configured() -> frozenset[str]:
    """The processors whose saved methods can be charged (or detached) now: configured here."""
    ready = set()
    for processor in CHARGEABLE_PROCESSORS:
        try:
            processor_configured(processor)
        except ProcessorNotConfigured:
            continue
        ready.add(processor)
    return frozenset(ready)


def invoice_charge(*, invoice_id: int, payment_method_id: int, actor: Any) -> ProcessorAttempt:
    """Charge what is due on an open invoice to a saved method (a Stripe payment method, or
    a PayPal wallet), without the payer.

    Returns the attempt: succeeded (with its payment), failed (with the decline code), pending
    (the processor is still working, e.g. a bank debit) or unknown (no answer; resolved later).
    """
    _require_charge_permission(actor)
    attempt = _start(invoice_id=invoice_id, payment_method_id=payment_method_id, actor=actor)
    return _processor_charge(attempt, description=f"Invoice {attempt.invoice}")


def invoice_charge_amount(
    *,
    invoice_id: int,
    payment_method_id: int,
    amount: Decimal,
    actor: Any,
    idempotency_key: str = "",
    allocations: Sequence[AllocationInput] | None = None,
    description: str = "",
) -> ProcessorAttempt:
    """Charge ``amount`` (more than 0, at most what is due) toward an open invoice, or toward
    the open invoices of ``allocations`` (which name the invoice), to a saved method.

    With an ``idempotency_key`` the charge is made once for that key: a caller repeating it
    (a redelivered job, a crash before it noted the outcome) gets the first attempt back,
    whatever its status, and the processor is not called again. Outcomes as
    ``invoice_charge``; a success records one payment, allocated as the attempt was made out.
    """
    _require_charge_permission(actor)
    if idempotency_key:
        existing = ProcessorAttempt.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing
    try:
        attempt = _start(
            invoice_id=invoice_id,
            payment_method_id=payment_method_id,
            actor=actor,
            amount=amount,
            allocations=allocations,
            idempotency_key=idempotency_key,
        )
    except ChargeInProgress:
        existing = ProcessorAttempt.objects.filter(idempotency_key=idempotency_key).first()
        if idempotency_key and existing is not None:
            return existing  # a concurrent caller with the same key opened it first
        raise
    return _processor_charge(attempt, description=description or f"Invoice {attempt.invoice}")


def _processor_charge(attempt: ProcessorAttempt, *, description: str) -> ProcessorAttempt:
    """Ask the processor to charge a committed pending attempt, outside any transaction, and
    apply its answer: declined (failed), no answer (unknown), or the intent as it stands."""
    try:
        answer: IntentResult | ProcessorDeclined | ProcessorUnreachable = _ask(attempt, description)
    except (ProcessorDeclined, ProcessorUnreachable) as exc:
        answer = exc
    return _answer_apply(attempt, answer)


def _ask(attempt: ProcessorAttempt, description: str) -> IntentResult:
    """Charge the attempt's saved method at its processor (no query: it may run in a thread
    of ``attempts_charge``)."""
    if attempt.processor == paypal_adapter.NAME:
        return _paypal_ask(attempt, description)
    return _stripe_ask(attempt, description)


def _paypal_ask(attempt: ProcessorAttempt, description: str) -> IntentResult:
    """An order on the saved wallet, completed by PayPal at once; the attempt's key is the
    request id (one order, one capture, however often asked) and the order's custom id (how
    its capture webhook finds the attempt). A currency PayPal does not take is a refusal
    (nothing was sent), which no retry mends."""
    try:
        paypal_adapter.amount_value(attempt.amount.amount, attempt.currency)
    except paypal_adapter.CurrencyNotSupported as exc:
        raise ProcessorRequestError(code="currency_not_supported", message=exc.message) from None
    order = paypal_adapter.order_charge_vaulted(
        amount=attempt.amount.amount,
        currency=attempt.currency,
        vault_id=attempt.payment_method.processor_token,
        request_id=attempt.idempotency_key,
        custom_id=attempt.idempotency_key,
        reference_id=str(attempt.invoice_id or ""),
        description=description,
    )
    return order.intent()


def _stripe_ask(attempt: ProcessorAttempt, description: str) -> IntentResult:
    """The off-session PaymentIntent for the attempt (its method loaded: no query here, so
    it may run in a thread of ``attempts_charge``)."""
    method = attempt.payment_method
    return stripe_adapter.payment_intent_charge(
        amount_minor=attempt.amount_minor,
        currency=attempt.currency,
        customer=method.processor_customer_id,
        payment_method=method.processor_token,
        idempotency_key=attempt.idempotency_key,
        metadata=_metadata(attempt),
        description=description,
    )


def _answer_apply(
    attempt: ProcessorAttempt, answer: IntentResult | ProcessorDeclined | ProcessorUnreachable
) -> ProcessorAttempt:
    if isinstance(answer, ProcessorDeclined):
        return _apply_failure(
            attempt.pk,
            code=answer.code,
            message=answer.message,
            intent_id=answer.intent_id,
            charge_id=answer.charge_id,
        )
    if isinstance(answer, ProcessorUnreachable):
        label = PROCESSOR_LABELS.get(attempt.processor, attempt.processor)
        logger.warning("%s did not answer for attempt %s: %s", label, attempt.pk, answer)
        return _apply_unknown(attempt.pk, message=f"The processor did not answer: {answer}")
    return attempt_apply_intent(attempt_id=attempt.pk, intent=answer)


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


def attempt_apply_failure(
    *, attempt_id: int, code: str, message: str, intent_id: str = "", charge_id: str = ""
) -> ProcessorAttempt:
    """Fail an attempt on the processor's word (a success stays a success)."""
    return _apply_failure(
        attempt_id, code=code, message=message, intent_id=intent_id, charge_id=charge_id
    )


def _allocations(attempt: ProcessorAttempt, amount: Decimal) -> list[AllocationInput] | None:
    """As the attempt was made out (the invoice charged, or the allocations of a partial
    charge) while the invoices can take the money; otherwise oldest due first and the rest as
    customer credit (the money was collected all the same)."""
    parts = _parts(attempt, amount)
    if parts is None:
        return None
    targets = Invoice.objects.filter(pk__in=[p.invoice_id for p in parts])
    return parts if _parts_fit(parts, {i.pk: i for i in targets}) else None


def _parts(attempt: ProcessorAttempt, amount: Decimal) -> list[AllocationInput] | None:
    """The allocations the attempt was made out for, if ``amount`` is what they add up to."""
    if attempt.invoice_id is None:
        return None
    parts = [
        AllocationInput(invoice_id=int(a["invoice"]), amount=Decimal(a["amount"]))
        for a in attempt.allocations or []
    ] or [AllocationInput(invoice_id=attempt.invoice_id, amount=amount)]
    if sum((p.amount for p in parts), Decimal(0)) != amount:
        return None
    return parts


def _parts_fit(parts: Sequence[AllocationInput], invoices: dict[int, Invoice]) -> bool:
    """Whether each invoice is open with at least its part due."""
    for part in parts:
        target = invoices.get(part.invoice_id)
        if (
            target is None
            or target.status != InvoiceStatus.OPEN
            or target.amount_due.amount < part.amount
        ):
            return False
    return True


def _apply_success(attempt: ProcessorAttempt, intent: IntentResult) -> ProcessorAttempt:
    if attempt.payment_id is not None:
        return attempt
    amount = _intent_amount(attempt, intent)
    payment = payment_record(
        actor=None,
        customer_id=attempt.customer_id,
        amount=amount,
        currency=attempt.currency,
        method=_payment_method_kind(attempt.payment_method),
        reference=_payment_reference(attempt, intent),
        allocations=_allocations(attempt, amount),
        processor=attempt.processor,
        processor_charge_id=intent.charge_id,
    )
    _succeed(attempt, payment, intent)
    attempt.save(update_fields=SUCCEEDED_FIELDS)
    return attempt


# What a success changes on the attempt.
SUCCEEDED_FIELDS = [
    "status",
    "payment",
    "failure_code",
    "failure_message",
    "completed_at",
    "processor_intent_id",
    "processor_charge_id",
]


def _succeed(attempt: ProcessorAttempt, payment: Payment, intent: IntentResult) -> None:
    attempt.succeed(payment=payment)
    attempt.processor_intent_id = intent.id
    attempt.processor_charge_id = intent.latest_charge


def _intent_amount(attempt: ProcessorAttempt, intent: IntentResult) -> Decimal:
    return Decimal(intent.amount_minor or attempt.amount_minor).scaleb(
        -minor_unit_exponent(attempt.currency)
    )


def _payment_reference(attempt: ProcessorAttempt, intent: IntentResult) -> str:
    return f"{PROCESSOR_LABELS.get(attempt.processor, attempt.processor)} {intent.id}"


def _payment_method_kind(method: PaymentMethod) -> str:
    if method.type in (
        PaymentMethodType.ACH,
        PaymentMethodType.WIRE_TRANSFER,
        PaymentMethodType.CRYPTOCURRENCY,
    ):
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
    if attempt.processor == paypal_adapter.NAME:
        return _paypal_resolve(attempt)
    if attempt.processor == coinbase_adapter.NAME:
        return _coinbase_resolve(attempt)
    if attempt.checkout_id and not attempt.processor_intent_id:
        return _stripe_checkout_resolve(attempt)
    if attempt.payment_method.processor_token.startswith(HOSTED_CHECKOUT_PREFIX):
        return _apply_failure(
            attempt.pk,
            code="checkout_not_created",
            message="No Checkout page was handed out for this attempt: nothing can be paid.",
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
            code=NO_RECORD,
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


def _paypal_wallet_resolve(attempt: ProcessorAttempt) -> ProcessorAttempt:
    """A charge of a saved wallet whose answer was lost: PayPal has no search by our key, so
    the same request is sent again under the same PayPal-Request-Id, which PayPal answers
    with the first order (one order, one capture) while it keeps the id. Past that window a
    new request could charge again: the attempt stays unknown for a clerk, who finds the
    capture by its custom id (our key) in PayPal's activity or the settlement import."""
    if timezone.now() - attempt.created_at >= PAYPAL_REQUEST_ID_KEPT:
        logger.error(
            "PayPal charge %s (key %s) is still unknown after %s: check it in PayPal.",
            attempt.pk,
            attempt.idempotency_key,
            PAYPAL_REQUEST_ID_KEPT,
        )
        return attempt
    try:
        intent = _paypal_ask(attempt, f"Invoice {attempt.invoice}")
    except ProcessorDeclined as exc:
        return _answer_apply(attempt, exc)
    return attempt_apply_intent(attempt_id=attempt.pk, intent=intent)


# --- many charges at once (autopay) -------------------------------------------------------------

# Processor calls of one ``attempts_charge`` in flight at once.
CHARGE_THREADS = 8


@dataclass(frozen=True, slots=True)
class ChargeRequest:
    """One charge of ``attempts_open``: what is due on an invoice, to a saved method (Stripe
    or a PayPal wallet), under a key the caller chose (autopay: per invoice and try)."""

    invoice: Invoice
    method: PaymentMethod
    idempotency_key: str


def attempts_open(requests: Sequence[ChargeRequest]) -> list[ProcessorAttempt]:
    """The pending attempts of many charges, in one insert with their history rows.

    In the caller's transaction, which has locked the invoices and checked what
    ``invoice_charge_amount`` checks: each invoice open with something due and no attempt in
    flight, each method a chargeable saved method of the invoice's customer (the database's
    one-open-attempt-per-invoice constraint refuses the whole insert otherwise)."""
    attempts = []
    for r in requests:
        invoice = r.invoice
        amount = round_money(invoice.amount_due.amount, invoice.currency)
        attempts.append(
            ProcessorAttempt(
                processor=r.method.processor,
                customer_id=invoice.customer_id,
                payment_method=r.method,
                invoice=invoice,
                currency=invoice.currency,
                amount=Money(amount, invoice.currency),
                amount_minor=to_minor_units(amount, invoice.currency),
                idempotency_key=r.idempotency_key,
            )
        )
    return bulk_create_with_history(attempts, ProcessorAttempt)


def attempts_charge(
    attempts: Sequence[ProcessorAttempt], *, descriptions: Sequence[str]
) -> list[ProcessorAttempt | Exception]:
    """Charge committed pending attempts (``attempts_open``) at their processor (Stripe, or
    PayPal for a saved wallet) and apply the answers.

    The processors are asked from a pool of threads, outside any transaction, each request
    with its attempt's idempotency key. The successes are then recorded together in one transaction
    (``payments_record_batch``: one ledger batch, bulk rows); declines, missing answers and
    intents still processing are applied one by one as ``invoice_charge`` applies them, and
    so is any success the batch could not take. Returns, per attempt, the attempt as it now
    stands, or the unexpected error that left it pending (the resolver takes it from there).
    """
    if not attempts:
        return []
    with ThreadPoolExecutor(max_workers=min(CHARGE_THREADS, len(attempts))) as pool:
        answers = list(pool.map(_answer, attempts, descriptions))
    recorded = _successes_record(
        [
            (attempt, answer)
            for attempt, answer in zip(attempts, answers, strict=True)
            if isinstance(answer, IntentResult) and answer.succeeded
        ]
    )
    results: list[ProcessorAttempt | Exception] = []
    for attempt, answer in zip(attempts, answers, strict=True):
        if attempt.pk in recorded:
            results.append(recorded[attempt.pk])
        elif isinstance(answer, IntentResult | ProcessorDeclined | ProcessorUnreachable):
            try:
                results.append(_answer_apply(attempt, answer))
            except DomainError as exc:
                logger.error("The answer for attempt %s was not applied: %s", attempt.pk, exc)
                results.append(exc)
        else:
            logger.error("Charging attempt %s failed", attempt.pk, exc_info=answer)
            results.append(answer)
    return results


def _answer(
    attempt: ProcessorAttempt, description: str
) -> IntentResult | ProcessorDeclined | ProcessorUnreachable | Exception:
    try:
        return _ask(attempt, description)
    except Exception as exc:  # the answer (or the error) goes back to the caller
        return exc


def _successes_record(
    succeeded: Sequence[tuple[ProcessorAttempt, IntentResult]],
) -> dict[int, ProcessorAttempt]:
    """Record the payments of succeeded intents in one transaction; returns the attempts
    recorded, by id. Those it leaves (already recorded, by a webhook say; an invoice no
    longer able to take its part; refused by the batch; or not PostgreSQL, where the batch
    path does not run) go the one-by-one way, which handles each case."""
    if not succeeded or connection.vendor != "postgresql":
        return {}
    try:
        with transaction.atomic():
            return _successes_write({a.pk: i for a, i in succeeded})
    except (DomainError, IntegrityError) as exc:
        # A payment recorded meanwhile under one of the charge ids, say: one by one instead.
        logger.warning("Recording %s charges together failed: %s", len(succeeded), exc)
        return {}


def _successes_write(intents: dict[int, IntentResult]) -> dict[int, ProcessorAttempt]:
    locked = list(
        ProcessorAttempt.objects.select_for_update(of=("self",))
        .select_related("payment_method")
        .filter(pk__in=list(intents), status__in=OPEN_ATTEMPT, payment__isnull=True)
        .order_by("pk")
    )
    taken = set(
        Payment.objects.filter(
            processor_charge_id__in=[intents[a.pk].charge_id for a in locked]
        ).values_list("processor_charge_id", flat=True)
    )
    parts = {
        a.pk: _parts(a, _intent_amount(a, intents[a.pk]))
        for a in locked
        if intents[a.pk].charge_id not in taken
    }
    invoices = Invoice.objects.filter(
        pk__in={p.invoice_id for ps in parts.values() for p in ps or ()}
    )
    targets = {i.pk: i for i in invoices}
    chosen = [a for a in locked if parts.get(a.pk) and _parts_fit(parts[a.pk] or [], targets)]
    batch = payments_record_batch(
        actor=None,
        items=[
            BatchPaymentInput(
                customer_id=a.customer_id,
                amount=_intent_amount(a, intents[a.pk]),
                currency=a.currency,
                method=_payment_method_kind(a.payment_method),
                allocations=parts[a.pk] or (),
                reference=_payment_reference(a, intents[a.pk]),
                processor=a.processor,
                processor_charge_id=intents[a.pk].charge_id,
            )
            for a in chosen
        ],
    )
    done: dict[int, ProcessorAttempt] = {}
    for attempt, payment in zip(chosen, batch.payments, strict=True):
        if payment is not None:
            _succeed(attempt, payment, intents[attempt.pk])
            done[attempt.pk] = attempt
    update_with_history(ProcessorAttempt, list(done.values()), SUCCEEDED_FIELDS)
    return done


# --- hosted checkouts: PayPal and Coinbase Commerce ---------------------------------------------


@dataclass(frozen=True, slots=True)
class HostedCheckout:
    """An open attempt and the processor's page where the payer pays it."""

    attempt: ProcessorAttempt
    url: str


def _hosted_method(customer_id: int, processor: str, type_: str) -> PaymentMethod:
    """The customer's hosted-checkout method of the processor (made on first use): it holds
    no token of a card or wallet, the payer chooses how to pay on the processor's page."""
    method, _ = PaymentMethod.objects.get_or_create(
        processor=processor,
        processor_token=f"{HOSTED_CHECKOUT_PREFIX}{customer_id}",
        defaults={"customer_id": customer_id, "type": type_},
    )
    return method


def _hosted_start(
    *, invoice_id: int, processor: str, type_: str, actor: Any, amount: Decimal | None = None
) -> ProcessorAttempt:
    with transaction.atomic():
        try:
            invoice = Invoice.objects.select_for_update().get(pk=invoice_id)
        except Invoice.DoesNotExist:
            raise NotFound(f"No invoice {invoice_id}.") from None
        method = _hosted_method(invoice.customer_id, processor, type_)
        return _attempt_open(invoice=invoice, method=method, actor=actor, amount=amount)


def _checkout_failed(attempt: ProcessorAttempt, exc: Exception) -> CheckoutNotCreated:
    """Fail an attempt whose order or charge was refused or not answered. Even if the
    processor made it, its page was never handed out, so nobody can pay it."""
    label = PROCESSOR_LABELS[attempt.processor]
    if isinstance(exc, ProcessorDeclined):
        code, message = exc.code, f"{label} refused: {exc.message}"
    else:
        code, message = "processor_unreachable", f"{label} did not answer: {exc}"
        logger.warning("%s did not answer for attempt %s: %s", label, attempt.pk, exc)
    _apply_failure(attempt.pk, code=code, message=message)
    return CheckoutNotCreated(message, attempt=attempt.pk, processor_code=code)


def _checkout_set(
    attempt_id: int,
    *,
    url: str,
    intent_id: str = "",
    charge_id: str = "",
    checkout_id: str = "",
) -> ProcessorAttempt:
    with transaction.atomic():
        attempt = _locked(attempt_id)
        attempt.processor_intent_id = intent_id or attempt.processor_intent_id
        attempt.processor_charge_id = charge_id or attempt.processor_charge_id
        attempt.checkout_id = checkout_id or attempt.checkout_id
        attempt.checkout_url = url[:2000]
        attempt.save(
            update_fields=[
                "processor_intent_id",
                "processor_charge_id",
                "checkout_id",
                "checkout_url",
            ]
        )
    return attempt


def stripe_checkout_create(
    *,
    invoice_id: int,
    actor: Any,
    success_url: str,
    cancel_url: str,
    amount: Decimal | None = None,
) -> HostedCheckout:
    """Open an attempt and a Stripe Checkout Session for what is due on an open invoice (or
    ``amount`` of it). The payer enters the card on Stripe's page; the payment is recorded
    when Stripe's signed webhook (or the scheduled check) says the intent succeeded."""
    _require_charge_permission(actor)
    stripe_adapter.stripe_client()
    attempt = _hosted_start(
        invoice_id=invoice_id,
        processor=stripe_adapter.NAME,
        type_=PaymentMethodType.CREDIT_CARD,
        actor=actor,
        amount=amount,
    )
    invoice = Invoice.objects.select_related("customer").get(pk=invoice_id)
    try:
        session = stripe_adapter.checkout_session_create(
            amount_minor=attempt.amount_minor,
            currency=attempt.currency,
            name=f"Invoice {invoice}",
            success_url=success_url,
            cancel_url=cancel_url,
            idempotency_key=f"{attempt.idempotency_key}-checkout",
            metadata=_metadata(attempt),
            expires_at=timezone.now() + STRIPE_CHECKOUT_EXPIRY,
            customer_email=invoice.customer.email,
        )
    except (ProcessorDeclined, ProcessorUnreachable) as exc:
        raise _checkout_failed(attempt, exc) from None
    attempt = _checkout_set(attempt.pk, url=session.url, checkout_id=session.id)
    return HostedCheckout(attempt=attempt, url=session.url)


def _stripe_checkout_resolve(attempt: ProcessorAttempt) -> ProcessorAttempt:
    """What became of a Checkout Session: paid (its intent applied), expired (failed: nobody
    can pay it now), or still open."""
    session = stripe_adapter.checkout_session_get(attempt.checkout_id)
    if session is None:
        return _apply_failure(
            attempt.pk,
            code=NO_RECORD,
            message="Stripe has no such Checkout Session: nothing was charged.",
        )
    return checkout_session_apply(attempt=attempt, session=session)


def checkout_session_apply(
    *, attempt: ProcessorAttempt, session: stripe_adapter.CheckoutSession
) -> ProcessorAttempt:
    """Bring a hosted-checkout attempt in line with its Checkout Session as Stripe has it."""
    if session.payment_intent and session.status == "complete":
        intent = stripe_adapter.payment_intent_get(session.payment_intent)
        return attempt_apply_intent(attempt_id=attempt.pk, intent=intent)
    if session.status == "expired":
        return _apply_failure(
            attempt.pk,
            code="checkout_expired",
            message="The payer did not pay on Stripe's Checkout page before it expired.",
        )
    return attempt


def hosted_checkout_withdraw(*, attempt_id: int) -> ProcessorAttempt:
    """Close a hosted checkout nobody has paid, so that another can be opened: Stripe's session
    is expired (refused when it is complete: its payment is coming, ``ChargeInProgress``), a
    PayPal order is dropped unless approved (it is never captured), a Coinbase charge is
    dropped (a payment still made on it is recorded all the same, as customer credit if the
    invoice was paid meanwhile)."""
    attempt = ProcessorAttempt.objects.get(pk=attempt_id)
    if attempt.status not in OPEN_ATTEMPT or not attempt.checkout_url:
        return attempt
    busy = ChargeInProgress(
        f"A payment of invoice {attempt.invoice} at "
        f"{PROCESSOR_LABELS.get(attempt.processor, attempt.processor)} is being completed."
    )
    if attempt.processor == stripe_adapter.NAME and attempt.checkout_id:
        try:
            expired = stripe_adapter.checkout_session_expire(attempt.checkout_id).status
        except ProcessorRequestError:
            session = stripe_adapter.checkout_session_get(attempt.checkout_id)
            expired = session.status if session is not None else "expired"
            if session is not None and session.status != "expired":
                attempt = checkout_session_apply(attempt=attempt, session=session)
                if attempt.status in OPEN_ATTEMPT:
                    raise busy from None
                return attempt
        except ProcessorUnreachable:
            raise busy from None
        if expired != "expired":
            raise busy
    elif attempt.processor == paypal_adapter.NAME and attempt.processor_intent_id:
        order = paypal_adapter.order_get(attempt.processor_intent_id)
        if order is not None and order.status in ("APPROVED", "COMPLETED"):
            _paypal_resolve(attempt)
            raise busy
    return _apply_failure(
        attempt.pk,
        code="checkout_withdrawn",
        message="The payer chose another way to pay; this checkout was closed unpaid.",
    )


def paypal_order_create(
    *,
    invoice_id: int,
    actor: Any,
    amount: Decimal | None = None,
    return_url: str = "",
    cancel_url: str = "",
) -> HostedCheckout:
    """Open an attempt and a PayPal order (intent CAPTURE) for what is due on an open invoice;
    the payer approves it at the returned link. A currency PayPal does not take is refused
    before anything is written or sent."""
    _require_charge_permission(actor)
    paypal_adapter.paypal_configured()
    invoice = Invoice.objects.filter(pk=invoice_id).first()
    if invoice is None:
        raise NotFound(f"No invoice {invoice_id}.")
    paypal_adapter.amount_value(
        amount if amount is not None else round_money(invoice.amount_due.amount, invoice.currency),
        invoice.currency,
    )
    attempt = _hosted_start(
        invoice_id=invoice_id,
        processor=paypal_adapter.NAME,
        type_=PaymentMethodType.CREDIT_CARD,
        actor=actor,
        amount=amount,
    )
    try:
        order = paypal_adapter.order_create(
            amount=attempt.amount.amount,
            currency=attempt.currency,
            request_id=attempt.idempotency_key,
            custom_id=attempt.idempotency_key,
            reference_id=str(attempt.invoice_id),
            description=f"Invoice {attempt.invoice}",
            return_url=return_url,
            cancel_url=cancel_url,
        )
    except (ProcessorDeclined, ProcessorUnreachable) as exc:
        raise _checkout_failed(attempt, exc) from None
    attempt = _checkout_set(attempt.pk, url=order.approve_url, intent_id=order.id)
    return HostedCheckout(attempt=attempt, url=order.approve_url)


def paypal_order_capture(*, invoice_id: int, order_id: str, actor: Any) -> ProcessorAttempt:
    """Capture the invoice's PayPal order once the payer approved it. Capturing again (a
    retry, a double click) records nothing more: the request id is the attempt's, and the
    attempt keeps its one payment. No answer leaves the attempt UNKNOWN for the scheduled
    check."""
    _require_charge_permission(actor)
    paypal_adapter.paypal_configured()
    attempt = ProcessorAttempt.objects.filter(
        processor=paypal_adapter.NAME, invoice_id=invoice_id, processor_intent_id=order_id
    ).first()
    if attempt is None:
        raise NotFound(f"No PayPal order {order_id} for invoice {invoice_id}.")
    if attempt.status == AttemptStatus.SUCCEEDED:
        return attempt
    if attempt.status == AttemptStatus.FAILED:
        raise Conflict(
            f"The PayPal order {order_id} is {attempt.failure_code or 'failed'}; create a new one.",
            code="attempt_failed",
        )
    return _paypal_capture(attempt)


def _paypal_capture(attempt: ProcessorAttempt) -> ProcessorAttempt:
    try:
        order = paypal_adapter.order_capture(
            order_id=attempt.processor_intent_id,
            request_id=f"{attempt.idempotency_key}-capture",
        )
    except ProcessorUnreachable as exc:
        logger.warning("PayPal did not answer the capture of attempt %s: %s", attempt.pk, exc)
        return _apply_unknown(attempt.pk, message=f"The processor did not answer: {exc}")
    except ProcessorRequestError as exc:
        if exc.code == "order_not_approved":
            raise Conflict(
                "The payer has not approved the PayPal order yet.", code="order_not_approved"
            ) from None
        raise CheckoutNotCreated(
            f"PayPal refused the capture: {exc.message}", processor_code=exc.code
        ) from None
    except ProcessorDeclined as exc:
        # The order stays open: the payer may approve it again with another funding source.
        raise PaymentDeclined(exc.message, decline_code=exc.code, attempt=attempt.pk) from None
    return attempt_apply_intent(attempt_id=attempt.pk, intent=order.intent())


def _paypal_resolve(attempt: ProcessorAttempt) -> ProcessorAttempt:
    """What became of a PayPal order: captured (one payment), approved but not captured
    (captured now, as the payer asked), voided or expired (failed), or still awaited."""
    if attempt.payment_method.is_wallet and not attempt.processor_intent_id:
        return _paypal_wallet_resolve(attempt)
    if not attempt.processor_intent_id:
        return _apply_failure(
            attempt.pk,
            code="order_not_created",
            message="No PayPal order was handed out for approval: nothing can have been paid.",
        )
    order = paypal_adapter.order_get(attempt.processor_intent_id)
    if order is None:
        return _apply_failure(
            attempt.pk,
            code=NO_RECORD,
            message="PayPal has no such order: nothing was captured.",
        )
    if order.status == "APPROVED":
        try:
            return _paypal_capture(attempt)
        except (PaymentDeclined, Conflict, CheckoutNotCreated) as exc:
            logger.warning("PayPal order of attempt %s not captured: %s", attempt.pk, exc)
            return attempt
    intent = order.intent()
    if intent.succeeded or intent.failed:
        return attempt_apply_intent(attempt_id=attempt.pk, intent=intent)
    awaiting = order.status in ("CREATED", "PAYER_ACTION_REQUIRED", "SAVED")
    if awaiting and attempt.payment_method.is_wallet:
        return _apply_failure(
            attempt.pk,
            code="payer_action_required",
            message="PayPal asks the payer to act on this charge of the saved wallet.",
            intent_id=order.id,
        )
    if awaiting and timezone.now() - attempt.created_at >= PAYPAL_ORDER_EXPIRY:
        return _apply_failure(
            attempt.pk,
            code="order_expired",
            message="The payer did not approve the PayPal order in time.",
        )
    return attempt


def coinbase_charge_create(
    *,
    invoice_id: int,
    actor: Any,
    amount: Decimal | None = None,
    redirect_url: str = "",
    cancel_url: str = "",
) -> HostedCheckout:
    """Open an attempt and a Coinbase Commerce charge (fixed price) for what is due on an
    open invoice. Its payment is recorded only when Coinbase's signed webhook confirms it."""
    _require_charge_permission(actor)
    coinbase_adapter.coinbase_configured()
    attempt = _hosted_start(
        invoice_id=invoice_id,
        processor=coinbase_adapter.NAME,
        type_=PaymentMethodType.CRYPTOCURRENCY,
        actor=actor,
        amount=amount,
    )
    try:
        charge = coinbase_adapter.charge_create(
            amount=attempt.amount.amount,
            currency=attempt.currency,
            name=f"Invoice {attempt.invoice}",
            description=f"Payment of invoice {attempt.invoice}",
            metadata={
                coinbase_adapter.ATTEMPT_METADATA_KEY: attempt.idempotency_key,
                "invoice_id": str(attempt.invoice_id),
                "customer_id": str(attempt.customer_id),
            },
            redirect_url=redirect_url,
            cancel_url=cancel_url,
        )
    except (ProcessorDeclined, ProcessorUnreachable) as exc:
        raise _checkout_failed(attempt, exc) from None
    attempt = _checkout_set(
        attempt.pk, url=charge.hosted_url, intent_id=charge.id, charge_id=charge.code
    )
    return HostedCheckout(attempt=attempt, url=charge.hosted_url)


def _coinbase_resolve(attempt: ProcessorAttempt) -> ProcessorAttempt:
    """Coinbase is never asked: a charge unpaid when it expired is failed (a late
    confirmation still records the payment); a delayed one waits for a person."""
    if attempt.status == AttemptStatus.UNKNOWN:
        return attempt
    expiry = timedelta(
        seconds=float(
            getattr(
                settings,
                "COINBASE_COMMERCE_CHARGE_EXPIRY_SECONDS",
                COINBASE_CHARGE_EXPIRY.total_seconds(),
            )
        )
    )
    if timezone.now() - attempt.created_at < expiry:
        return attempt
    detected = attempt.processor_intent_id and (
        WebhookEvent.objects.filter(
            provider=coinbase_adapter.NAME,
            type="charge:pending",
            payload__data__id=attempt.processor_intent_id,
        ).exists()
    )
    if detected:
        return attempt  # paid, awaiting confirmations on the chain
    return _apply_failure(
        attempt.pk,
        code="charge_expired",
        message="No payment of the Coinbase charge was confirmed before it expired.",
    )


def attempt_apply_delayed(*, attempt_id: int, message: str) -> ProcessorAttempt:
    """A payment arrived after the charge expired (Coinbase charge:delayed): the outcome is
    for a person to decide in Coinbase, so a pending attempt becomes UNKNOWN with the reason."""
    with transaction.atomic():
        attempt = _locked(attempt_id)
        if attempt.status == AttemptStatus.PENDING:
            attempt.lose_track(message=message)
            attempt.save(update_fields=["status", "failure_message"])
        elif attempt.status == AttemptStatus.FAILED:
            attempt.failure_code = "payment_delayed"
            attempt.failure_message = message[:500]
            attempt.save(update_fields=["failure_code", "failure_message"])
    return attempt


def payment_charge(
    *,
    actor: Any,
    customer_id: int,
    invoice_id: int,
    amount: Decimal,
    currency: str,
    payment_method_id: int,
) -> ProcessorAttempt:
    """``POST /api/billing/payments`` with a saved payment method: the processor charges
    exactly what the one allocated invoice has due (a partial card charge would leave the
    processor and the invoice disagreeing), through ``invoice_charge``."""
    invoice = Invoice.objects.filter(pk=invoice_id, customer_id=customer_id).first()
    if invoice is None:
        raise BillingError(
            f"Invoice {invoice_id} is not an invoice of this customer.", field="allocations"
        )
    if invoice.currency != currency or invoice.amount_due.amount != amount:
        raise BillingError(
            "A payment through a saved payment method charges the invoice's amount due: "
            f"{format_amount(invoice.amount_due.amount, invoice.currency)}.",
            field="amount",
        )
    return invoice_charge(invoice_id=invoice.pk, payment_method_id=payment_method_id, actor=actor)
