"""A customer saves a PayPal wallet at PayPal (Payment Method Tokens v3), never here.

``wallet_setup_start`` opens a setup token marked with the customer (PayPal's
``merchant_customer_id``) and returns PayPal's approval page. PayPal sends the payer back
with the setup token's id; ``wallet_setup_complete`` reads that setup token from PayPal
(never trusting the browser: it must be approved, and be this customer's) and exchanges it
for a payment token, kept as the customer's payment method. PayPal's signed
``VAULT.PAYMENT-TOKEN.CREATED`` saves it too (``wallet_token_apply``) if the exchange was
made but its answer lost. Either way a wallet is saved once.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from billing.enums import PaymentMethodType
from billing.exceptions import BillingError
from billing.models import Customer, PaymentMethod
from billing.processors import paypal as paypal_adapter
from billing.services.payment_methods import payment_method_add
from core.company import company_details
from core.exceptions import DomainError, NotFound

# How our customers are named at PayPal (the setup token's merchant_customer_id).
MERCHANT_CUSTOMER_PREFIX = "bo-customer-"
# A setup token PayPal has approved (VAULTED: exchanged already; the exchange is repeated
# under the same request id and answers the same token).
APPROVED = frozenset({"APPROVED", "VAULTED"})


class WalletNotApproved(DomainError):
    code = "wallet_not_approved"


def merchant_customer_id(customer_id: int) -> str:
    return f"{MERCHANT_CUSTOMER_PREFIX}{customer_id}"


def _customer_of(merchant_id: str) -> int | None:
    number = merchant_id.removeprefix(MERCHANT_CUSTOMER_PREFIX)
    if not merchant_id.startswith(MERCHANT_CUSTOMER_PREFIX) or not number.isdigit():
        return None
    return int(number)


def _paypal_customer(customer: Customer) -> str:
    """PayPal's customer of the wallets this customer saved before (a new wallet joins it)."""
    return (
        PaymentMethod.objects.filter(customer=customer, processor=paypal_adapter.NAME)
        .exclude(processor_customer_id="")
        .order_by("-pk")
        .values_list("processor_customer_id", flat=True)
        .first()
        or ""
    )


def wallet_setup_offered() -> bool:
    try:
        paypal_adapter.paypal_configured()
    except DomainError:
        return False
    return True


def wallet_setup_start(*, customer_id: int, return_url: str, cancel_url: str) -> str:
    """PayPal's page where the customer approves saving the wallet for our charges."""
    paypal_adapter.paypal_configured()
    customer = Customer.objects.filter(pk=customer_id).first()
    if customer is None:
        raise NotFound(f"No customer {customer_id}.")
    now = timezone.now()
    token = paypal_adapter.setup_token_create(
        request_id=f"bo_wallet_{customer.pk}_{int(now.timestamp() * 1000)}",
        merchant_customer_id=merchant_customer_id(customer.pk),
        paypal_customer_id=_paypal_customer(customer),
        return_url=return_url,
        cancel_url=cancel_url,
        description=f"Invoices of {company_details()['name']}",
    )
    return token.approve_url


def wallet_setup_complete(*, customer_id: int, setup_token_id: str) -> PaymentMethod:
    """Save the wallet the customer approved at PayPal: the setup token is read from PayPal
    and must be approved and this customer's; an approval completed before returns the
    wallet saved then."""
    paypal_adapter.paypal_configured()
    setup = paypal_adapter.setup_token_get(setup_token_id)
    if setup is None or _customer_of(setup.merchant_customer_id) != customer_id:
        raise WalletNotApproved("PayPal has no such approval for you; start again.")
    if setup.status not in APPROVED:
        raise WalletNotApproved(
            "PayPal has not confirmed the approval; nothing was saved.", status=setup.status
        )
    token = paypal_adapter.payment_token_create(
        setup_token_id=setup.id, request_id=f"bo_wallet_token_{setup.id}"
    )
    return wallet_save(customer_id=customer_id, token=token)


def wallet_save(*, customer_id: int, token: paypal_adapter.PaymentToken) -> PaymentMethod:
    """Keep a payment token as the customer's PayPal wallet, once."""
    existing = PaymentMethod.objects.filter(
        processor=paypal_adapter.NAME, processor_token=token.id
    ).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            return payment_method_add(
                actor=None,
                customer_id=customer_id,
                type=PaymentMethodType.CREDIT_CARD,
                processor=paypal_adapter.NAME,
                processor_customer_id=token.customer_id,
                processor_token=token.id,
                processor_account=token.email,
            )
    except (IntegrityError, BillingError):
        # Saved meanwhile (the webhook and the return at once): that one.
        found = PaymentMethod.objects.filter(
            processor=paypal_adapter.NAME, processor_token=token.id
        ).first()
        if found is None:
            raise
        return found


def wallet_token_apply(resource: dict[str, object]) -> str:
    """``VAULT.PAYMENT-TOKEN.CREATED``: save the wallet if it is one of our customers' and
    not saved yet (the return to our page was lost)."""
    token = paypal_adapter.payment_token_from(resource)
    customer_id = _customer_of(token.merchant_customer_id)
    if customer_id is None or not Customer.objects.filter(pk=customer_id).exists():
        return "ignored: not a wallet of our customers"
    if not token.id or not token.customer_id:
        return "ignored: no payment token"
    method = wallet_save(customer_id=customer_id, token=token)
    return f"wallet {method.pk} saved"
