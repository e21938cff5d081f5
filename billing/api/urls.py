from django.urls import path

from billing.api import views
from billing.api.pdf import InvoicePdfApi

urlpatterns = [
    path("customers", views.CustomerListCreateApi.as_view(), name="billing-customers"),
    path("customers/<int:customer_id>", views.CustomerDetailApi.as_view(), name="billing-customer"),
    path("invoices", views.InvoiceListCreateApi.as_view(), name="billing-invoices"),
    path("invoices/<int:invoice_id>", views.InvoiceDetailApi.as_view(), name="billing-invoice"),
    path(
        "invoices/<int:invoice_id>/issue",
        views.InvoiceIssueApi.as_view(),
        name="billing-invoice-issue",
    ),
    path(
        "invoices/<int:invoice_id>/void",
        views.InvoiceVoidApi.as_view(),
        name="billing-invoice-void",
    ),
    path(
        "invoices/<int:invoice_id>/mark-uncollectible",
        views.InvoiceMarkUncollectibleApi.as_view(),
        name="billing-invoice-uncollectible",
    ),
    path("invoices/<int:invoice_id>/pdf", InvoicePdfApi.as_view(), name="billing-invoice-pdf"),
    path("payments", views.PaymentListCreateApi.as_view(), name="billing-payments"),
    path("payments/<int:payment_id>", views.PaymentDetailApi.as_view(), name="billing-payment"),
]
