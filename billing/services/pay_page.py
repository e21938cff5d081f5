"""Paying from the hosted invoice page: the payer chooses a way, is sent to the processor's
own page, and comes back.

No card number, PayPal login or wallet ever reaches us (PCI SAQ A): the page posts only the
way chosen (and, where the policy allows, the amount) to our server, which opens a checkout at
the processor and redirects the browser there. The payment is recorded from the processor's
word: Stripe's and Coinbase's signed webhooks (or the scheduled check that asks Stripe), and
PayPal's answer to our server's capture of the order the payer approved. The browser coming
back proves nothing: until the processor confirms, the page says "processing".

One checkout is open per invoice. Choosing the same way again continues it; choosing another
closes it first (``hosted_checkout_withdraw``), which is refused while its payment is being
completed. A page opens at most ``pay_page.checkouts_per_hour`` checkouts per invoice and hour.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from billing.enums import InvoiceStatus
from billing.exceptions import BillingError
from billing.models import Invoice, ProcessorAttempt
from billing.models.processors import OPEN_ATTEMPT, AttemptStatus
from billing.processors import ChargeInProgress, PaymentDeclined, ProcessorNotConfigured
from billing.processors import coinbase as coinbase_adapter
from billing.processors import paypal as paypal_adapter
from billing.processors import stripe as stripe_adapter
from billing.selectors import invoice_link_url
from billing.services.links import invoice_link_open
from billing.services.processor_payments import (
    CheckoutNotCreated,
    HostedCheckout,
    coinbase_charge_create,
    hosted_checkout_withdraw,
    paypal_order_capture,
    paypal_order_create,
    stripe_checkout_create,
)
from core.exceptions import Conflict, DomainError
from core.money import amount_text, check_amount
from core.system_settings import system_settings

# A checkout opened this recently is continued when the payer chooses the same way again.
CONTINUE_WITHIN = timedelta(minutes=30)


@dataclass(frozen=True, slots=True)
class PayOption:
    key: str  # what the page posts: card, paypal, crypto
    label: str
    processor: str


CARD = PayOption("card", "Card", stripe_adapter.NAME)
PAYPAL = PayOption("paypal", "PayPal", paypal_adapter.NAME)
CRYPTO = PayOption("crypto", "Crypto (Coinbase Commerce)", coinbase_adapter.NAME)
_METHOD_OF = {CARD.key: "credit_card", PAYPAL.key: "credit_card", CRYPTO.key: "cryptocurrency"}
_PROCESSOR_SETTING = {
    stripe_adapter.NAME: "stripe",
    paypal_adapter.NAME: "paypal",
    coinbase_adapter.NAME: "coinbase_commerce",
}


class PayOptionUnavailable(DomainError):
    code = "pay_option_unavailable"
    status_code = 400


class TooManyCheckouts(DomainError):
    code = "too_many_checkouts"
    status_code = 429


def _configured(option: PayOption, currency: str) -> bool:
    try:
        if option is CARD:
            stripe_adapter.stripe_client()
        elif option is PAYPAL:
            paypal_adapter.paypal_configured()
            paypal_adapter.amount_value(Decimal(1), currency)
        else:
            coinbase_adapter.coinbase_configured()
    except (ProcessorNotConfigured, DomainError):
        return False
    return True


def pay_options(*, currency: str) -> list[PayOption]:
    """The ways the page offers for an invoice in ``currency``: enabled in the system settings
    (processor and payment method) and configured on this server."""
    conf = system_settings()
    return [
        option
        for option in (CARD, PAYPAL, CRYPTO)
        if _PROCESSOR_SETTING[option.processor] in conf.integrations.payment_processors
        and _METHOD_OF[option.key] in conf.payment_methods
        and _configured(option, currency)
    ]


def _amount(invoice: Invoice, text: str) -> Decimal | None:
    """None for all that is due; else the part the payer typed, checked against the policy."""
    text = (text or "").strip().replace(",", "")
    due = invoice.amount_due.amount
    if not text:
        return None
    policy = system_settings().pay_page
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise BillingError(f"{text[:30]!r} is not an amount.", field="amount") from None
    if not amount.is_finite() or amount <= 0:
        raise BillingError("The amount must be more than zero.", field="amount")
    check_amount(amount, invoice.currency)
    if amount == due:
        return None
    if not policy.partial_payments:
        raise BillingError(
            f"This invoice is paid in full: {amount_text(due, invoice.currency)}.",
            field="amount",
        )
    if amount > due:
        raise BillingError(
            f"That is more than the {amount_text(due, invoice.currency)} due.", field="amount"
        )
    if amount < policy.minimum_partial:
        raise BillingError(
            f"A part payment is at least {amount_text(policy.minimum_partial, invoice.currency)}.",
            field="amount",
        )
    return amount


def pay_page_checkout(*, token: str, option_key: str, amount_text: str = "") -> HostedCheckout:
    """Open (or continue) the checkout of the chosen way for the invoice of a valid link."""
    link = invoice_link_open(token=token)
    invoice = link.invoice
    if invoice.status != InvoiceStatus.OPEN or invoice.amount_due.amount <= 0:
        raise Conflict(f"Invoice {invoice} has nothing to pay.", code="nothing_due")
    option = next((o for o in pay_options(currency=invoice.currency) if o.key == option_key), None)
    if option is None:
        raise PayOptionUnavailable("That way of paying is not offered for this invoice.")
    amount = _amount(invoice, amount_text)
    now = timezone.now()
    open_attempt = ProcessorAttempt.objects.filter(invoice=invoice, status__in=OPEN_ATTEMPT).first()
    if open_attempt is not None:
        if not open_attempt.checkout_url:
            raise ChargeInProgress(
                f"A payment of invoice {invoice} is being processed; its outcome is awaited."
            )
        wanted = amount if amount is not None else invoice.amount_due.amount
        if (
            open_attempt.processor == option.processor
            and open_attempt.amount.amount == wanted
            and now - open_attempt.created_at < CONTINUE_WITHIN
        ):
            return HostedCheckout(attempt=open_attempt, url=open_attempt.checkout_url)
        if hosted_checkout_withdraw(attempt_id=open_attempt.pk).status == AttemptStatus.SUCCEEDED:
            raise Conflict(
                f"The payment of invoice {invoice} has just been confirmed.", code="paid"
            )
    recent = ProcessorAttempt.objects.filter(
        invoice=invoice, created_at__gte=now - timedelta(hours=1)
    ).exclude(checkout_url="")
    if recent.count() >= system_settings().pay_page.checkouts_per_hour:
        raise TooManyCheckouts(
            "Too many payments were started for this invoice in the last hour. "
            "Please try again later."
        )
    page = invoice_link_url(link)
    if option is CARD:
        return stripe_checkout_create(
            invoice_id=invoice.pk,
            actor=None,
            amount=amount,
            success_url=f"{page}?paying=card",
            cancel_url=page,
        )
    if option is PAYPAL:
        return paypal_order_create(
            invoice_id=invoice.pk,
            actor=None,
            amount=amount,
            return_url=f"{settings.PUBLIC_BASE_URL}{reverse('hosted:paypal_return', args=[token])}",
            cancel_url=page,
        )
    return coinbase_charge_create(
        invoice_id=invoice.pk,
        actor=None,
        amount=amount,
        redirect_url=f"{page}?paying=crypto",
        cancel_url=page,
    )


def pay_page_paypal_return(*, token: str, order_id: str) -> str:
    """The payer is back from approving a PayPal order: capture it (PayPal's answer to our
    capture is what records the payment). Returns what the page then says: paid, processing,
    declined or open (not approved)."""
    link = invoice_link_open(token=token)
    attempt = ProcessorAttempt.objects.filter(
        processor=paypal_adapter.NAME, invoice=link.invoice, processor_intent_id=order_id[:200]
    ).first()
    if attempt is None:
        return "open"
    if attempt.status == AttemptStatus.SUCCEEDED:
        return "paid"
    try:
        attempt = paypal_order_capture(invoice_id=link.invoice_id, order_id=order_id, actor=None)
    except Conflict:
        return "open"  # not approved (the payer went back), or this order failed before
    except (CheckoutNotCreated, PaymentDeclined):
        return "declined"
    return "paid" if attempt.status == AttemptStatus.SUCCEEDED else "processing"


def checkout_in_progress(invoice: Invoice) -> dict[str, Any] | None:
    """The invoice's open attempt as the page shows it: a checkout the payer started (which
    they may continue) or a payment being processed (autopay, staff, or a paid checkout)."""
    attempt = ProcessorAttempt.objects.filter(invoice=invoice, status__in=OPEN_ATTEMPT).first()
    if attempt is None:
        return None
    options = {o.processor: o for o in (CARD, PAYPAL, CRYPTO)}
    option = options.get(attempt.processor)
    return {
        "checkout": bool(attempt.checkout_url),
        "url": attempt.checkout_url,
        "label": option.label if option else attempt.processor,
        "started": attempt.created_at,
        "amount": amount_text(attempt.amount.amount, attempt.currency),
    }
