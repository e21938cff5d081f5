"""Billing models, one module per area; imported here so Django finds them."""

from billing.models.autopay import AutopayStatus, CardExpiryReminder, InvoiceAutopay
from billing.models.catalog import Price, Product
from billing.models.credit_notes import CreditApplication, CreditNote, CreditNoteLine
from billing.models.documents import (
    Customer,
    Invoice,
    InvoiceLine,
    Payment,
    PaymentAllocation,
    TaxRate,
)
from billing.models.links import InvoiceLink
from billing.models.processors import PaymentMethod, ProcessorAttempt, WebhookEvent
from billing.models.refunds import Refund, RefundAllocation
from billing.models.subscriptions import PendingItem, Subscription, SubscriptionItem, UsageEvent

__all__ = [
    "AutopayStatus",
    "CardExpiryReminder",
    "CreditApplication",
    "CreditNote",
    "CreditNoteLine",
    "Customer",
    "Invoice",
    "InvoiceAutopay",
    "InvoiceLine",
    "InvoiceLink",
    "Payment",
    "PaymentAllocation",
    "PaymentMethod",
    "PendingItem",
    "Price",
    "ProcessorAttempt",
    "Product",
    "Refund",
    "RefundAllocation",
    "Subscription",
    "SubscriptionItem",
    "TaxRate",
    "UsageEvent",
    "WebhookEvent",
]
