"""Mounts InvoicePdfApi for its tests (the project URLs wire it in billing/api/urls.py)."""

from django.urls import path

from billing.api.pdf import InvoicePdfApi

urlpatterns = [
    path(
        "api/billing/invoices/<int:invoice_id>/pdf",
        InvoicePdfApi.as_view(),
        name="invoice-pdf",
    ),
]
