"""Payment methods: added (cards only as processor tokens; a card number sent as a bank
account is refused by ``core.card_numbers``, RELIABILITY.md C1), and removed softly.

A removed Stripe card is also detached from its Stripe customer, and a removed PayPal wallet's
payment token deleted at PayPal, after the removal commits (``payment_method_processor_detach``,
queued then, and a periodic sweep for what the queue or the processor missed): the removal
itself never waits on the processor nor fails because of it.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from billing.enums import PaymentMethodType
from billing.exceptions import BillingError, CustomerErased
from billing.models import Customer, PaymentMethod
from billing.processors import (
    CardNumberRefused,
    ProcessorNotConfigured,
    ProcessorRequestError,
    ProcessorUnreachable,
)
from billing.processors import paypal as paypal_adapter
from billing.processors import stripe as stripe_adapter
from billing.services.processor_payments import processors_configured
from core.card_numbers import looks_like_card_number
from core.commit import after_commit
from core.exceptions import NotFound, PermissionDeniedError

logger = logging.getLogger(__name__)

METHOD_TYPES = (
    PaymentMethodType.CREDIT_CARD,
    PaymentMethodType.ACH,
    PaymentMethodType.WIRE_TRANSFER,
    PaymentMethodType.CRYPTOCURRENCY,
)


def _check(actor: Any, perm: str, what: str) -> None:
    if actor is not None and not actor.has_perm(perm):
        raise PermissionDeniedError(f"Your role does not allow {what}.")


def _clean(type_: str, processor: str, fields: dict[str, Any]) -> dict[str, Any]:
    token = fields.get("processor_token", "")
    account = re.sub(r"[ \-]", "", fields.get("bank_account_number", ""))
    if type_ not in METHOD_TYPES:
        raise BillingError(f"Unknown payment method type {type_!r}.", field="type")
    if processor not in ("", stripe_adapter.NAME, paypal_adapter.NAME):
        raise BillingError(f"Unknown processor {processor!r}.", field="processor")
    if bool(processor) != bool(token):
        raise BillingError(
            "A processor payment method needs both the processor and its token.",
            field="processor_token",
        )
    if account and looks_like_card_number(account):
        raise CardNumberRefused(CardNumberRefused.message_text, field="bank_account_number")
    if type_ == PaymentMethodType.CREDIT_CARD:
        if not processor:
            raise BillingError(
                "Cards are accepted only as a processor token (a Stripe pm_..., or a saved "
                "PayPal wallet's payment token).",
                field="processor_token",
            )
        if account or fields.get("bank_routing_number"):
            raise BillingError("A card has no bank account.", field="bank_account_number")
    elif type_ in (PaymentMethodType.ACH, PaymentMethodType.WIRE_TRANSFER) and not processor:
        if not account or not fields.get("bank_account_holder"):
            raise BillingError(
                "A bank payment method needs the account holder and account number.",
                field="bank_account_number",
            )
        if type_ == PaymentMethodType.ACH and not fields.get("bank_routing_number"):
            raise BillingError("ACH needs the routing number.", field="bank_routing_number")
    if processor == stripe_adapter.NAME and not fields.get("processor_customer_id"):
        raise BillingError(
            "A Stripe payment method needs the Stripe customer (cus_...) it is attached to.",
            field="processor_customer_id",
        )
    if processor == paypal_adapter.NAME and (
        type_ != PaymentMethodType.CREDIT_CARD or not fields.get("processor_customer_id")
    ):
        raise BillingError(
            "A PayPal wallet is saved with its payment token and PayPal customer id.",
            field="processor_customer_id",
        )
    cleaned = dict(fields)
    cleaned["bank_account_number"] = account
    cleaned["bank_account_last4"] = account[-4:]
    return cleaned


def payment_method_add(
    *,
    actor: Any,
    customer_id: int,
    type: str,
    processor: str = "",
    processor_customer_id: str = "",
    processor_token: str = "",
    card_brand: str = "",
    card_last4: str = "",
    card_exp_month: int | None = None,
    card_exp_year: int | None = None,
    bank_account_holder: str = "",
    bank_routing_number: str = "",
    bank_account_number: str = "",
    processor_account: str = "",
    is_default: bool = False,
) -> PaymentMethod:
    """Save a customer's payment method. The first one, or one marked default, becomes the
    default (the previous default is unmarked in the same transaction)."""
    _check(actor, "billing.add_paymentmethod", "adding payment methods")
    fields = _clean(
        type,
        processor,
        {
            "processor_customer_id": processor_customer_id,
            "processor_token": processor_token,
            "card_brand": card_brand,
            "card_last4": card_last4,
            "card_exp_month": card_exp_month,
            "card_exp_year": card_exp_year,
            "bank_account_holder": bank_account_holder,
            "bank_routing_number": bank_routing_number,
            "bank_account_number": bank_account_number,
            "processor_account": processor_account[:254],
        },
    )
    with transaction.atomic():
        customer = Customer.objects.select_for_update().get(pk=customer_id)
        if customer.erased_at is not None:
            raise CustomerErased(
                f"Customer {customer.pk}'s personal data was erased (GDPR): no new method."
            )
        active = PaymentMethod.objects.select_for_update().filter(
            customer=customer, detached_at__isnull=True
        )
        if (
            processor_token
            and PaymentMethod.objects.filter(
                processor=processor, processor_token=processor_token
            ).exists()
        ):
            raise BillingError("This processor token is already saved.", field="processor_token")
        make_default = is_default or not active.exists()
        if make_default:
            for previous in active.filter(is_default=True):
                previous.is_default = False
                previous.save(update_fields=["is_default"])
        return PaymentMethod.objects.create(
            customer=customer,
            type=type,
            processor=processor,
            is_default=make_default,
            created_by=actor if getattr(actor, "pk", None) else None,
            **fields,
        )


def payment_method_remove(*, actor: Any, payment_method_id: int) -> PaymentMethod:
    """Detach a payment method: kept for its history and attempts, never charged again."""
    _check(actor, "billing.delete_paymentmethod", "removing payment methods")
    with transaction.atomic():
        try:
            method = PaymentMethod.objects.select_for_update().get(pk=payment_method_id)
        except PaymentMethod.DoesNotExist:
            raise NotFound(f"No payment method {payment_method_id}.") from None
        if method.detached_at is None:
            method.detached_at = timezone.now()
            method.is_default = False
            method.save(update_fields=["detached_at", "is_default"])
            if _detached_at_processor(method):
                after_commit(_queue_processor_detach, method.pk)
    return method


# --- Detaching removed cards at Stripe, and wallets at PayPal ---------------------------------

# Only a Stripe card saved as a PaymentMethod (pm_...) is detached there, and a saved PayPal
# wallet (a payment token of a PayPal customer) deleted there: hosted-checkout placeholders
# hold no token, and bank accounts are debited or paid by us, not by a processor.
STRIPE_METHOD_PREFIX = "pm_"
_STRIPE_CARD = Q(
    processor=stripe_adapter.NAME,
    type=PaymentMethodType.CREDIT_CARD,
    processor_token__startswith=STRIPE_METHOD_PREFIX,
)
_PAYPAL_WALLET = Q(processor=paypal_adapter.NAME, type=PaymentMethodType.CREDIT_CARD) & ~Q(
    processor_customer_id=""
)
_DETACH_PENDING = (_STRIPE_CARD | _PAYPAL_WALLET) & Q(
    detached_at__isnull=False, processor_detached_at__isnull=True
)
DETACH_SWEEP_BATCH = 200
DETACHED = "detached"
NOT_ATTACHED = "not attached at Stripe"


def _detached_at_processor(method: PaymentMethod) -> bool:
    if method.is_wallet:
        return method.type == PaymentMethodType.CREDIT_CARD
    return (
        method.processor == stripe_adapter.NAME
        and method.type == PaymentMethodType.CREDIT_CARD
        and method.processor_token.startswith(STRIPE_METHOD_PREFIX)
    )


def _queue_processor_detach(payment_method_id: int) -> None:
    """After the removal committed. A queue that cannot take it leaves it to the sweep."""
    from billing.tasks import payment_method_processor_detach_task

    payment_method_processor_detach_task.delay(payment_method_id=str(payment_method_id))


def payment_method_processor_detach(*, payment_method_id: int) -> str:
    """Detach a removed Stripe card from its Stripe customer (delete a removed PayPal
    wallet's token at PayPal), once (idempotent: a method detached before, not removed, or
    never held by a processor is left alone). The processor saying it is not attached, or
    unknown, counts as done. Raises ``ProcessorUnreachable`` when it does not answer, for
    the caller to try again; the method stays removed here either way."""
    method = PaymentMethod.objects.filter(pk=payment_method_id).first()
    if method is None:
        return "no such payment method"
    if method.detached_at is None:
        return "not removed"
    if method.processor_detached_at is not None:
        return "detached before"
    if not _detached_at_processor(method):
        return "not a Stripe card or PayPal wallet"
    try:
        if method.is_wallet:
            detached_now = paypal_adapter.payment_token_delete(method.processor_token)
        else:
            detached_now = stripe_adapter.payment_method_detach(method.processor_token)
    except ProcessorNotConfigured:
        return f"{'PayPal' if method.is_wallet else 'Stripe'} is not configured"
    # No row lock is held while Stripe is asked; the stamp is written once.
    with transaction.atomic():
        locked = PaymentMethod.objects.select_for_update().get(pk=method.pk)
        if locked.processor_detached_at is None:
            locked.processor_detached_at = timezone.now()
            locked.save(update_fields=["processor_detached_at"])
    return DETACHED if detached_now else NOT_ATTACHED


def payment_methods_processor_detach_sweep(*, limit: int = DETACH_SWEEP_BATCH) -> dict[str, int]:
    """Scheduled: detach at their processor the removed methods not confirmed detached yet
    (the processor or the queue was down when they were removed), oldest first, at most
    ``limit`` a run, of the processors configured. Stops at the first call a processor does
    not answer: the next run carries on."""
    counts = {"detached": 0, "refused": 0, "pending": 0}
    ids = list(
        PaymentMethod.objects.filter(_DETACH_PENDING, processor__in=processors_configured())
        .order_by("detached_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    for payment_method_id in ids:
        try:
            outcome = payment_method_processor_detach(payment_method_id=payment_method_id)
        except ProcessorUnreachable as exc:
            logger.warning(
                "The processor did not answer detaching method %s: %s", payment_method_id, exc
            )
            break
        except ProcessorRequestError as exc:
            logger.warning(
                "The processor refused to detach method %s: %s %s",
                payment_method_id,
                exc.code,
                exc.message,
            )
            counts["refused"] += 1
            continue
        if outcome in (DETACHED, NOT_ATTACHED):
            counts["detached"] += 1
    counts["pending"] = PaymentMethod.objects.filter(_DETACH_PENDING).count()
    return counts


def payment_method_default_set(*, actor: Any, payment_method_id: int) -> PaymentMethod:
    """Make a saved method the customer's default (the one autopay charges)."""
    _check(actor, "billing.change_paymentmethod", "changing payment methods")
    with transaction.atomic():
        method = PaymentMethod.objects.select_for_update().filter(pk=payment_method_id).first()
        if method is None:
            raise NotFound(f"No payment method {payment_method_id}.")
        if method.detached_at is not None:
            raise BillingError("A removed payment method cannot be the default.")
        for previous in (
            PaymentMethod.objects.select_for_update()
            .filter(customer_id=method.customer_id, is_default=True)
            .exclude(pk=method.pk)
        ):
            previous.is_default = False
            previous.save(update_fields=["is_default"])
        if not method.is_default:
            method.is_default = True
            method.save(update_fields=["is_default"])
    return method
