"""Billing models, one module per area; imported here so Django finds them."""

from billing.models.documents import (
    Customer,
    Invoice,
    InvoiceLine,
    Payment,
    PaymentAllocation,
    TaxRate,
)

__all__ = [
    "Customer",
    "Invoice",
    "InvoiceLine",
    "Payment",
    "PaymentAllocation",
    "TaxRate",
]
