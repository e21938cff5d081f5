"""Billing reads for the API and admin (lines and customers prefetched: no N+1)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from django.conf import settings
from django.core import signing
from django.db.models import Prefetch, QuerySet
from django.db.models.functions import Now
from django.urls import reverse

from billing.enums import InvoiceStatus
from billing.models import (
    AutopayStatus,
    Customer,
    Invoice,
    InvoiceAutopay,
    InvoiceLink,
    Payment,
    PaymentMethod,
)
from billing.processors.paypal import NAME as PAYPAL
from billing.processors.stripe import NAME as STRIPE


def customer_list() -> QuerySet[Customer]:
    return Customer.objects.order_by("name", "pk")


def invoice_list(
    *,
    customer: int | None = None,
    status: str | None = None,
    currency: str | None = None,
    issued_from: date | None = None,
    issued_to: date | None = None,
    due_from: date | None = None,
    due_to: date | None = None,
) -> QuerySet[Invoice]:
    qs = Invoice.objects.select_related("customer").prefetch_related(
        "lines",
        Prefetch(
            "links",
            queryset=InvoiceLink.objects.filter(revoked_at__isnull=True, expires_at__gt=Now()),
            to_attr="active_links",
        ),
    )
    if customer:
        qs = qs.filter(customer_id=customer)
    if status:
        qs = qs.filter(status=status)
    if currency:
        qs = qs.filter(currency=currency)
    if issued_from:
        qs = qs.filter(issue_date__gte=issued_from)
    if issued_to:
        qs = qs.filter(issue_date__lte=issued_to)
    if due_from:
        qs = qs.filter(due_date__gte=due_from)
    if due_to:
        qs = qs.filter(due_date__lte=due_to)
    return qs.order_by("-created_at", "-pk")


def payment_list(*, customer: int | None = None) -> QuerySet[Payment]:
    qs = Payment.objects.select_related("customer").prefetch_related("allocations__invoice")
    if customer:
        qs = qs.filter(customer_id=customer)
    return qs.order_by("-received_date", "-pk")


# The per-processor placeholder a PayPal or Coinbase attempt hangs on; it holds no token.
HOSTED_CHECKOUT_PREFIX = "hosted_checkout_"


def payment_method_list(*, customer_id: int) -> QuerySet[PaymentMethod]:
    """The customer's usable saved methods (hosted-checkout placeholders left out)."""
    return (
        PaymentMethod.objects.filter(customer_id=customer_id, detached_at__isnull=True)
        .exclude(processor_token__startswith=HOSTED_CHECKOUT_PREFIX)
        .order_by("-is_default", "pk")
    )


def _chargeable() -> QuerySet[PaymentMethod]:
    return (
        PaymentMethod.objects.filter(processor__in=(STRIPE, PAYPAL), detached_at__isnull=True)
        .exclude(processor_token__startswith=HOSTED_CHECKOUT_PREFIX)
        .exclude(processor_customer_id="")
        .exclude(processor_token="")
    )


def payment_method_chargeable(
    *, customer_id: int, payment_method_id: int | None = None
) -> PaymentMethod | None:
    """The customer's saved method that can be charged off-session (a Stripe payment method
    of a Stripe customer, or a saved PayPal wallet): the one given, else the default one;
    None when it cannot be."""
    qs = _chargeable().filter(customer_id=customer_id)
    if payment_method_id is not None:
        return qs.filter(pk=payment_method_id).first()
    return qs.filter(is_default=True).first()


def payment_methods_chargeable(*, customer_ids: Iterable[int]) -> dict[int, PaymentMethod]:
    """``payment_method_chargeable`` of many customers at once: each one's default method
    that can be charged off-session, by customer id (none: left out)."""
    return {
        m.customer_id: m
        for m in _chargeable().filter(customer_id__in=list(customer_ids), is_default=True)
    }


def autopay_holds(invoice_ids: list[int]) -> set[int]:
    """Of these invoices, those whose autopay has begun trying and has a retry scheduled:
    collections leave them alone (no overdue email while a retry may still pay). One never
    tried (no processor configured) is chased as any other."""
    return set(
        InvoiceAutopay.objects.filter(
            invoice_id__in=invoice_ids, status=AutopayStatus.SCHEDULED, tries__gte=1
        ).values_list("invoice_id", flat=True)
    )


# Hosted invoice links (``billing.services.links`` makes and checks them): the token is the
# link's nonce signed with the site's key under this salt.
LINK_SALT = "billing.invoice-link"


def invoice_link_url(link: InvoiceLink) -> str:
    """The link's absolute address (``PUBLIC_BASE_URL``)."""
    token = signing.Signer(salt=LINK_SALT).sign(link.nonce)
    return f"{settings.PUBLIC_BASE_URL}{reverse('hosted:invoice', args=[token])}"


def open_invoice_pay_links(*, customer_id: int) -> list[tuple[Invoice, str]]:
    """The customer's open invoices, oldest due first, each with the address of its active
    hosted page ("" for one that has none now: made at issue, it expired or was revoked)."""
    invoices = (
        Invoice.objects.filter(customer_id=customer_id, status=InvoiceStatus.OPEN)
        .prefetch_related(
            Prefetch(
                "links",
                queryset=InvoiceLink.objects.filter(
                    revoked_at__isnull=True, expires_at__gt=Now()
                ).order_by("-expires_at"),
                to_attr="active_links",
            )
        )
        .order_by("due_date", "pk")
    )
    return [
        (invoice, invoice_link_url(invoice.active_links[0]) if invoice.active_links else "")
        for invoice in invoices
    ]
