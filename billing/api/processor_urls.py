from django.urls import path

from billing.api import processor_views as views

urlpatterns = [
    path(
        "customers/<int:customer_id>/payment-methods",
        views.PaymentMethodListCreateApi.as_view(),
        name="billing-payment-methods",
    ),
    path(
        "customers/<int:customer_id>/payment-methods/<int:payment_method_id>",
        views.PaymentMethodDetailApi.as_view(),
        name="billing-payment-method",
    ),
    path(
        "invoices/<int:invoice_id>/charge",
        views.InvoiceChargeApi.as_view(),
        name="billing-invoice-charge",
    ),
    path("webhooks/stripe", views.StripeWebhookApi.as_view(), name="billing-webhook-stripe"),
]
