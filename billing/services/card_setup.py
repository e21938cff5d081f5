"""A customer saves a card on Stripe's own page (Checkout in setup mode), never on ours.

``card_setup_start`` finds (or makes) the customer's Stripe customer and opens the page; the
card is saved here when Stripe's signed ``checkout.session.completed`` arrives
(``card_setup_complete``): the SetupIntent and its PaymentMethod are read back from Stripe
and kept as the customer's payment method (brand, last 4, expiry; never the number). A
replayed event saves nothing twice.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from billing.models import Customer, PaymentMethod
from billing.processors import stripe as stripe_adapter
from billing.selectors import HOSTED_CHECKOUT_PREFIX
from billing.services.payment_methods import payment_method_add
from core.exceptions import NotFound

SETUP_METADATA_KEY = "backoffice_card_setup"


def _stripe_customer(customer: Customer) -> str:
    known = (
        PaymentMethod.objects.filter(customer=customer, processor=stripe_adapter.NAME)
        .exclude(processor_customer_id="")
        .exclude(processor_token__startswith=HOSTED_CHECKOUT_PREFIX)
        .order_by("-pk")
        .values_list("processor_customer_id", flat=True)
        .first()
    )
    return known or stripe_adapter.customer_create(
        email=customer.email,
        name=customer.name,
        idempotency_key=f"bo_customer_{customer.pk}",
        reference=str(customer.pk),
    )


def card_setup_start(*, customer_id: int, success_url: str, cancel_url: str) -> str:
    """The address of Stripe's page where the customer saves a card."""
    customer = Customer.objects.filter(pk=customer_id).first()
    if customer is None:
        raise NotFound(f"No customer {customer_id}.")
    now = timezone.now()
    session = stripe_adapter.checkout_setup_session_create(
        customer=_stripe_customer(customer),
        currency=customer.currency,
        success_url=success_url,
        cancel_url=cancel_url,
        idempotency_key=f"bo_setup_{customer.pk}_{int(now.timestamp() * 1000)}",
        metadata={SETUP_METADATA_KEY: str(customer.pk)},
        expires_at=now + timedelta(hours=1),
    )
    return session.url


def card_setup_complete(*, session: stripe_adapter.CheckoutSession) -> str:
    """Save the card of a completed setup session (what the webhook says happened)."""
    customer_id = session.metadata.get(SETUP_METADATA_KEY, "")
    if not customer_id.isdigit() or not Customer.objects.filter(pk=int(customer_id)).exists():
        return "ignored: not a card setup of ours"
    if session.status != "complete" or not session.setup_intent:
        return f"card setup {session.id} is {session.status}"
    card = stripe_adapter.setup_intent_card(session.setup_intent)
    if card is None:
        return f"card setup {session.id}: its SetupIntent has not succeeded"
    existing = PaymentMethod.objects.filter(
        processor=stripe_adapter.NAME, processor_token=card.id
    ).first()
    if existing is not None:
        return f"card {existing.pk} saved before"
    method = payment_method_add(
        actor=None,
        customer_id=int(customer_id),
        type="credit_card",
        processor=stripe_adapter.NAME,
        processor_customer_id=card.customer or session.customer,
        processor_token=card.id,
        card_brand=card.brand,
        card_last4=card.last4,
        card_exp_month=card.exp_month,
        card_exp_year=card.exp_year,
    )
    return f"card {method.pk} saved"
